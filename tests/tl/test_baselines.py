from typing import get_args

import numpy as np
import pytest

from tspg import tl
from tspg.data import Dataset, make_atlas, prepare, stratified_split
from tspg.tl._baselines import BaselineName, fit_pca


@pytest.fixture(scope="module")
def scaled():
    """A small atlas in scaled units: training part and held-out part (classes as names)."""
    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=12, n_markers=4, seed=2)
    ds = Dataset(atlas.gem, atlas.labels)
    split = stratified_split(ds.labels, test_size=0.25, val_size=0.0, seed=0)
    prep = prepare(ds, ds.classes, split)
    names = np.asarray(ds.classes)
    tr, te = prep.part == "train", prep.part == "test"
    return prep.x[tr], names[prep.y[tr]], prep.x[te], names[prep.y[te]]


def _interior(n_per_class=200, n_genes=6, seed=0):
    """Gaussian classes well inside [0, 1], so that the clip never binds."""
    rng = np.random.default_rng(seed)
    centres = {"a": 0.35, "b": 0.6}
    x = np.concatenate([rng.normal(c, 0.03, (n_per_class, n_genes)) for c in centres.values()]).astype(np.float32)
    y = np.repeat(list(centres), n_per_class)
    return x, y


def test_registry_names_match_the_literal_and_unknown_names_list_them(scaled):
    assert set(tl.BASELINES) == set(get_args(BaselineName))
    x_train, y_train, x, y = scaled
    with pytest.raises(ValueError, match="valid names: identity, mean_shift, optimal_transport, nearest_target"):
        tl.perturb_baseline("magic", x_train, y_train, x, y, "Liver")


def test_identity_is_a_zero_perturbation(scaled):
    x_train, y_train, x, y = scaled
    out = tl.perturb_baseline("identity", x_train, y_train, x, y, "Liver")
    np.testing.assert_array_equal(out, x)
    assert out is not x and out.dtype == np.float32


@pytest.mark.parametrize("name", list(tl.BASELINES))
def test_every_baseline_obeys_the_tspg_clip_and_is_deterministic(scaled, name):
    x_train, y_train, x, y = scaled
    x = x.copy()
    x[0, :3] = [-0.4, 1.7, 0.5]  # held-out values outside [0, 1] bound their own side
    a = tl.perturb_baseline(name, x_train, y_train, x, y, "Lung", seed=3)
    b = tl.perturb_baseline(name, x_train, y_train, x, y, "Lung", seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and a.dtype == np.float32
    assert (a >= np.minimum(x, 0) - 1e-7).all() and (a <= np.maximum(x, 1) + 1e-7).all()


def test_clip_never_moves_an_unperturbed_gene():
    x = np.array([[-0.5, 0.3, 1.4]], dtype=np.float32)
    np.testing.assert_array_equal(tl.clip_perturbed(x, x), x)
    np.testing.assert_array_equal(tl.clip_perturbed(x, x + 5), np.array([[1.0, 1.0, 1.4]], dtype=np.float32))
    np.testing.assert_array_equal(tl.clip_perturbed(x, x - 5), np.array([[-0.5, 0.0, 0.0]], dtype=np.float32))


def test_mean_shift_moves_a_source_class_mean_onto_the_target_mean():
    x, y = _interior()
    src = x[y == "a"]
    out = tl.perturb_baseline("mean_shift", x, y, src, y[y == "a"], "b")
    np.testing.assert_allclose(out.mean(0), x[y == "b"].mean(0), atol=1e-5)
    # every sample moves by the same vector; target samples do not move
    np.testing.assert_allclose(out - src, np.broadcast_to((out - src)[0], src.shape), atol=1e-6)
    tgt = x[y == "b"]
    np.testing.assert_array_equal(tl.perturb_baseline("mean_shift", x, y, tgt, y[y == "b"], "b"), tgt)


def test_optimal_transport_matches_target_mean_and_covariance():
    rng = np.random.default_rng(1)
    rot = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    src = rng.normal(0, 1, (2000, 2)) * [0.06, 0.02] + 0.3
    tgt = (rng.normal(0, 1, (2000, 2)) * [0.08, 0.03]) @ rot.T + 0.65
    x = np.concatenate([src, tgt]).astype(np.float32)
    y = np.repeat(["s", "t"], 2000)
    out = tl.perturb_baseline("optimal_transport", x, y, x[y == "s"], y[y == "s"], "t").astype(np.float64)
    np.testing.assert_allclose(out.mean(0), tgt.mean(0), atol=2e-3)
    np.testing.assert_allclose(np.cov(out.T), np.cov(tgt.T), atol=2e-4, rtol=0.05)
    # the map of the target onto itself is the identity
    np.testing.assert_array_equal(tl.perturb_baseline("optimal_transport", x, y, x[:5], ["t"] * 5, "t"), x[:5])


def test_optimal_transport_works_with_classes_smaller_than_the_pca(scaled):
    x_train, y_train, x, y = scaled  # 9 training samples per class, up to 26 components
    assert fit_pca(x_train).n_components_ > (y_train == "Liver").sum()
    src = y != "Liver"
    out = tl.perturb_baseline("optimal_transport", x_train, y_train, x[src], y[src], "Liver")
    assert np.isfinite(out).all()
    z = fit_pca(x_train)
    d_before = tl.energy_distance(z.transform(x[src]), z.transform(x[~src]))
    d_after = tl.energy_distance(z.transform(out), z.transform(x[~src]))
    assert d_after < 0.8 * d_before


def test_optimal_transport_maps_a_source_mean_onto_the_target_mean_in_every_gene():
    x, y = _interior(n_per_class=15, n_genes=60)  # 29 components < 60 genes: part of the shift is outside the PCA
    out = tl.perturb_baseline("optimal_transport", x, y, x[y == "a"], y[y == "a"], "b")
    np.testing.assert_allclose(out.mean(0), x[y == "b"].mean(0), atol=1e-5)


def test_nearest_target_returns_the_nearest_target_training_sample(scaled):
    x_train, y_train, x, y = scaled
    pool = x_train[y_train == "Lung"]
    out = tl.perturb_baseline("nearest_target", x_train, y_train, x, y, "Lung")
    d = ((x[:, None, :] - pool[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(out, pool[d.argmin(1)])
    np.testing.assert_array_equal(tl.perturb_baseline("nearest_target", x_train, y_train, pool, ["Lung"] * len(pool),
                                                      "Lung"), pool)


def test_perturb_baselines_gives_every_baseline_and_checks_shapes(scaled):
    x_train, y_train, x, y = scaled
    out = tl.perturb_baselines(x_train, y_train, x, y, "Liver")
    assert list(out) == list(tl.BASELINES)
    with pytest.raises(ValueError, match="same genes"):
        tl.perturb_baseline("identity", x_train, y_train, x[:, :5], y, "Liver")
    with pytest.raises(ValueError, match="no training sample"):
        tl.perturb_baseline("mean_shift", x_train, y_train, x, y, "Pancreas")
