import math
from typing import get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tspg import tl
from tspg.tl._metrics import MetricName, median_bandwidths

finite = st.floats(-10, 10, allow_nan=False, width=64)
sample_sets = st.integers(1, 12).flatmap(lambda n: arrays(np.float64, (n, 3), elements=finite))


def _points(n=60, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


@settings(max_examples=40, deadline=None)
@given(sample_sets)
def test_a_sample_set_has_distance_0_to_itself(x):
    assert tl.energy_distance(x, x) == 0.0
    assert tl.mmd(x, x, median_bandwidths(x)) == 0.0
    # and to a reordered copy of itself
    assert tl.energy_distance(x, x[::-1]) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(sample_sets, sample_sets)
def test_distances_are_symmetric_and_never_negative(x, y):
    bw = (0.5, 1.0, 2.0)
    assert tl.energy_distance(x, y) >= 0 and tl.mmd(x, y, bw) >= 0
    assert tl.energy_distance(x, y) == pytest.approx(tl.energy_distance(y, x), rel=1e-9, abs=1e-9)
    assert tl.mmd(x, y, bw) == pytest.approx(tl.mmd(y, x, bw), rel=1e-9, abs=1e-12)


def test_larger_shifts_give_larger_distances():
    x, y = _points(seed=0), _points(seed=1)
    bw = median_bandwidths(np.concatenate([x, y]))
    shifts = [0.0, 0.5, 1.0, 2.0, 4.0]
    energy = [tl.energy_distance(x, y + s) for s in shifts]
    mmd = [tl.mmd(x, y + s, bw) for s in shifts]
    assert all(a < b for a, b in zip(energy, energy[1:], strict=False))
    assert all(a < b for a, b in zip(mmd, mmd[1:], strict=False))


def test_energy_distance_of_two_points_is_twice_their_distance():
    assert tl.energy_distance(np.zeros((1, 2)), np.array([[3.0, 4.0]])) == pytest.approx(10.0)
    assert math.isnan(tl.energy_distance(np.zeros((0, 2)), np.zeros((3, 2))))


def test_median_bandwidths_scale_the_median_distance():
    z = np.array([[0.0], [1.0], [3.0]])  # distances 1, 2, 3
    assert median_bandwidths(z) == (1.0, 2.0, 4.0)
    assert median_bandwidths(np.zeros((4, 2)), scales=(1.0,)) == (1.0,)


def test_registry_names_match_the_literal_and_unknown_names_list_them():
    assert set(tl.METRICS) == set(get_args(MetricName))
    with pytest.raises(ValueError, match="valid names: success_f, success_logreg"):
        tl.compute_metrics(tl.MetricInput(x_adv=np.zeros((1, 2))), ["accuracy"])
    assert all(m.better in ("higher", "lower", "neither", "closer to 0.5") and m.description
               for m in tl.METRICS.values())
    assert tl.METRICS["c2st_auc"].better == "closer to 0.5"


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (4, 7), elements=st.floats(-1, 2, allow_nan=False)))
def test_an_identity_perturbation_has_zero_size_and_no_top_genes(x):
    out = tl.compute_metrics(tl.MetricInput(x_adv=x.copy(), x=x, de_t=np.arange(7.0) - 3))
    assert out["l1"] == 0 and out["l2"] == 0 and out["genes_moved"] == 0
    assert math.isnan(out["de_overlap"]) and math.isnan(out["de_direction"]) and math.isnan(out["pearson_delta"])


def test_size_metrics_are_per_sample_means():
    x = np.zeros((2, 4))
    p = np.array([[0.05, 0.2, -0.3, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = tl.compute_metrics(tl.MetricInput(x_adv=x + p, x=x), ["l1", "l2", "genes_moved"])
    assert out["l1"] == pytest.approx(0.55 / 2)
    assert out["l2"] == pytest.approx(np.linalg.norm(p[0]) / 2)
    assert out["genes_moved"] == 1.0  # 0.2 and -0.3 move, 0.05 does not; mean over 2 samples


def test_a_perfect_mean_prediction_has_r2_1():
    rng = np.random.default_rng(0)
    x_target = rng.uniform(0, 1, (9, 150))
    x_adv = x_target.mean(0) + rng.normal(0, 0.1, (5, 150))
    x_adv -= x_adv.mean(0) - x_target.mean(0)  # different samples, the same mean
    inp = tl.MetricInput(x_adv=x_adv, x_target=x_target, de_t=rng.normal(size=150))
    out = tl.compute_metrics(inp, ["r2_mean_all", "r2_mean_de20", "r2_mean_de100"])
    assert out == pytest.approx({"r2_mean_all": 1.0, "r2_mean_de20": 1.0, "r2_mean_de100": 1.0})
    worse = tl.compute_metrics(tl.MetricInput(x_adv=x_adv + 0.1, x_target=x_target, de_t=inp.de_t), ["r2_mean_all"])
    assert worse["r2_mean_all"] < 1.0


def test_r2_on_de_genes_uses_the_top_genes_by_absolute_t():
    rng = np.random.default_rng(1)
    x_target = rng.uniform(0, 1, (3, 120))
    de_t = rng.normal(size=120)
    top20 = np.argsort(-np.abs(de_t))[:20]
    x_adv = x_target + 0.5
    x_adv[:, top20] = x_target[:, top20]  # right on the top 20 DE genes only
    out = tl.compute_metrics(tl.MetricInput(x_adv=x_adv, x_target=x_target, de_t=de_t),
                             ["r2_mean_all", "r2_mean_de20", "r2_mean_de100"])
    assert out["r2_mean_de20"] == 1.0
    assert out["r2_mean_de100"] < 1.0 and out["r2_mean_all"] < 1.0


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 5), st.integers(0, 10_000))
def test_pearson_delta_of_the_exact_delta_is_1(scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (6, 30))
    delta = rng.normal(size=30)
    assert tl.METRICS["pearson_delta"](tl.MetricInput(x_adv=x + scale * delta, x=x, expected_delta=delta)) \
        == pytest.approx(1.0)
    assert tl.METRICS["pearson_delta"](tl.MetricInput(x_adv=x - scale * delta, x=x, expected_delta=delta)) \
        == pytest.approx(-1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(45, 200))
def test_de_agreement_of_the_de_genes_themselves_is_1(seed, n_genes):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n_genes) * 3
    x = rng.uniform(0, 1, (3, n_genes))
    same = tl.compute_metrics(tl.MetricInput(x_adv=x + t, x=x, de_t=t), ["de_overlap", "de_direction"])
    assert same == {"de_overlap": 1.0, "de_direction": 1.0}
    opposite = tl.compute_metrics(tl.MetricInput(x_adv=x - t, x=x, de_t=t), ["de_direction"])
    assert opposite["de_direction"] == 0.0


def test_de_overlap_counts_top_perturbed_genes_among_top_de_genes():
    t = np.concatenate([np.linspace(10, 1, 20), -np.linspace(10, 1, 20), np.zeros(60)])
    p = np.zeros(100)
    p[:10] = 1.0  # 10 of the top-20 up DE genes
    p[50:60] = 1.0  # 10 genes that are not DE
    x = np.zeros((1, 100))
    out = tl.compute_metrics(tl.MetricInput(x_adv=x + p, x=x, de_t=t), ["de_overlap", "de_direction"])
    assert out == {"de_overlap": 0.5, "de_direction": 0.5}


def test_success_excludes_samples_already_called_the_target():
    before = np.array([True, False, False, False])
    after = np.array([True, True, False, True])
    inp = tl.MetricInput(x_adv=np.zeros((4, 2)), calls={"f": (before, after), "knn": (None, after),
                                                       "centroid": (None, after)})
    out = tl.compute_metrics(inp, ["success_f", "success_knn", "success_logreg", "centroid_accuracy"])
    assert out["success_f"] == pytest.approx(2 / 3)
    assert out["success_knn"] == 0.75 and out["centroid_accuracy"] == 0.75
    assert math.isnan(out["success_logreg"])  # no such classifier
    nothing_to_do = tl.MetricInput(x_adv=np.zeros((1, 2)), calls={"f": (np.array([True]), np.array([True]))})
    assert math.isnan(tl.METRICS["success_f"](nothing_to_do))


def test_median_bandwidths_are_the_median_pairwise_distance_times_each_scale():
    z = _points(n=40, d=6, seed=3).astype(np.float32)
    pairs = [np.linalg.norm(z[i].astype(np.float64) - z[j]) for i in range(40) for j in range(i + 1, 40)]
    assert median_bandwidths(z, scales=(0.5, 2.0)) == pytest.approx((0.5 * np.median(pairs), 2 * np.median(pairs)),
                                                                    rel=1e-12)
    # more rows than max_samples: the median of the drawn rows' pairs (the same rows for the same seed)
    big = _points(n=300, d=4, seed=4)
    rows = np.random.default_rng(7).choice(300, 50, replace=False)
    sub = big[rows]
    expected = np.median([np.linalg.norm(sub[i] - sub[j]) for i in range(50) for j in range(i + 1, 50)])
    assert median_bandwidths(big, scales=(1.0,), max_samples=50, seed=7) == pytest.approx((expected,), rel=1e-12)
    assert median_bandwidths(np.zeros((5, 3)), scales=(1.0,)) == (1.0,)
