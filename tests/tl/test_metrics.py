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


def _cdist_energy(x, y):
    """The energy distance straight from scipy's pairwise distances (the definition, no matrix products)."""
    from scipy.spatial.distance import cdist

    return 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()


def _cdist_mmd(x, y, bw):
    from scipy.spatial.distance import cdist

    def k(a, b):
        d2 = cdist(a, b, "sqeuclidean")
        return np.mean([np.exp(-d2 / (2 * s**2)).mean() for s in bw])

    return k(x, x) + k(y, y) - 2 * k(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distances_from_products_match_the_pairwise_definition(dtype):
    """Scaled expression-like sets, far from the origin, with repeated rows in and across the sets (a class mean
    for every sample, the nearest training sample for several): the values of the pairwise definition."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.3, 0.9, (70, 400)).astype(dtype)
    y = (rng.uniform(0.3, 0.9, (25, 400)) + 0.02).astype(dtype)
    x[10:30] = x[3]
    x[40:45] = y[7]
    collapsed = np.repeat(y.mean(0, keepdims=True), 30, axis=0).astype(dtype)
    bw = median_bandwidths(np.concatenate([x, y]).astype(np.float64))
    for a in (x, collapsed):
        a64, y64 = a.astype(np.float64), y.astype(np.float64)
        assert tl.energy_distance(a, y) == pytest.approx(_cdist_energy(a64, y64), rel=1e-9, abs=1e-12)
        assert tl.mmd(a, y, bw) == pytest.approx(_cdist_mmd(a64, y64, bw), rel=1e-9, abs=1e-14)
    assert tl.energy_distance(collapsed, collapsed[:3]) == 0.0  # one point, however often
    # far from the origin (unscaled values): the products are taken of rows centred on their mean
    far, near = 1000 + x[:30].astype(np.float64), 1000 + y.astype(np.float64)
    assert tl.energy_distance(far, near) == pytest.approx(_cdist_energy(far, near), rel=1e-9)


def test_distinct_rows_keep_first_occurrences_and_map_every_row():
    from tspg.tl._metrics import _distinct_rows

    a = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 2.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
    first, inverse = _distinct_rows(a)
    assert first.tolist() == [0, 1, 4] and inverse.tolist() == [0, 1, 0, 1, 2]


def test_energy_and_mmd_of_a_group_share_one_distance_computation(monkeypatch):
    from tspg.tl import _metrics

    calls = []
    real = _metrics.pair_sets
    monkeypatch.setattr(_metrics, "pair_sets", lambda a, b: calls.append(a.shape) or real(a, b))
    rng = np.random.default_rng(0)
    x_adv, x_target = rng.random((8, 30)), rng.random((5, 30))
    inp = tl.MetricInput(x_adv=x_adv, x_target=x_target, z_adv=x_adv[:, :4], z_target=x_target[:, :4])
    out = tl.compute_metrics(inp, ["energy_distance", "mmd", "energy_distance_genes", "mmd_genes"])
    assert calls == [(8, 4), (8, 30)]  # one per space
    assert out["energy_distance_genes"] == pytest.approx(_cdist_energy(x_adv, x_target), rel=1e-9)
    assert out["mmd"] == pytest.approx(_cdist_mmd(x_adv[:, :4], x_target[:, :4], inp.bandwidths), rel=1e-9)
    empty = tl.compute_metrics(tl.MetricInput(x_adv=x_adv, x_target=x_target[:0]), ["energy_distance_genes"])
    assert math.isnan(empty["energy_distance_genes"])


def test_a_metric_input_never_returns_distances_of_other_arrays():
    """The shared distances belong to the arrays they came from: a copy with other arrays, or a field set anew,
    gets its own."""
    import dataclasses

    rng = np.random.default_rng(5)
    x_adv, x_target = rng.random((9, 12)), rng.random((6, 12))
    inp = tl.MetricInput(x_adv=x_adv, x_target=x_target)
    before = tl.METRICS["energy_distance_genes"](inp)  # kept on inp (a direct call, not compute_metrics)
    moved = dataclasses.replace(inp, x_adv=x_adv + 5)
    assert tl.METRICS["energy_distance_genes"](moved) == pytest.approx(_cdist_energy(x_adv + 5, x_target), rel=1e-9)
    inp.x_target = x_target + 1
    assert tl.METRICS["energy_distance_genes"](inp) == pytest.approx(_cdist_energy(x_adv, x_target + 1), rel=1e-9)
    assert before == pytest.approx(_cdist_energy(x_adv, x_target), rel=1e-9)
    tl.compute_metrics(inp, ["energy_distance_genes"])
    assert inp.pairs == {}  # nothing kept after compute_metrics


def test_signed_zeros_missing_values_and_no_features():
    z = np.where(np.random.default_rng(6).random((30, 50)) < 0.6, 0.0, 0.7)
    negative = np.where(z == 0, -0.0, z)
    assert tl.energy_distance(z, negative) == 0.0 and tl.mmd(z, negative, (1.0,)) == 0.0
    with_nan = z.copy()
    with_nan[3, 4] = np.nan
    assert math.isnan(tl.energy_distance(with_nan, z)) and math.isnan(tl.mmd(z, with_nan, (1.0,)))
    assert tl.energy_distance(z[:, :0], z[:5, :0]) == 0.0
