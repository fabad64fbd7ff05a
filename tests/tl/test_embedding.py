import numpy as np
import pandas as pd
import pytest

from tspg import tl


def _blobs(n=40, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (k, d))
    x = np.vstack([c + rng.normal(size=(n, d)) for c in centers])
    labels = pd.Series(np.repeat([f"c{i}" for i in range(k)], n), index=[f"s{i}" for i in range(n * k)])
    return pd.DataFrame(x, index=labels.index), labels, centers


def test_project_mode_does_not_let_perturbed_samples_bend_the_map():
    x, _, centers = _blobs()
    rng = np.random.default_rng(1)
    a = pd.DataFrame(centers[0] + rng.normal(size=(5, 20)), index=[f"p{i}" for i in range(5)])
    b = pd.DataFrame(centers[1] + rng.normal(size=(30, 20)), index=[f"q{i}" for i in range(30)])
    ma = tl.tsne_map(x, a, n_pcs=10, seed=0)
    mb = tl.tsne_map(x, b, n_pcs=10, seed=0)
    pd.testing.assert_frame_equal(ma.original, mb.original)
    assert list(ma.perturbed.index) == list(a.index)
    joint_a = tl.tsne_map(x, a, mode="joint", n_pcs=10, seed=0)
    joint_b = tl.tsne_map(x, b, mode="joint", n_pcs=10, seed=0)
    assert not np.allclose(joint_a.original.to_numpy(), joint_b.original.to_numpy())


def test_projected_samples_land_near_their_class():
    x, labels, centers = _blobs()
    new = pd.DataFrame(centers[2] + np.random.default_rng(3).normal(size=(6, 20)))
    m = tl.tsne_map(x, new, n_pcs=10, seed=0)
    means = m.original.groupby(labels).mean()
    nearest = [means.sub(row, axis=1).pow(2).sum(axis=1).idxmin() for _, row in m.perturbed.iterrows()]
    assert nearest == ["c2"] * 6


def test_tsne_is_deterministic_for_a_seed_and_rejects_bad_mode():
    x, _, centers = _blobs(n=20)
    new = pd.DataFrame(centers[:1] + 0.1)
    a, b = tl.tsne_map(x, new, seed=4), tl.tsne_map(x, new, seed=4)
    pd.testing.assert_frame_equal(a.original, b.original)
    pd.testing.assert_frame_equal(a.perturbed, b.perturbed)
    with pytest.raises(ValueError, match="project, joint"):
        tl.tsne_map(x, new, mode="both")


def test_choose_tsne_samples_follows_the_papers_selection():
    labels = pd.Series([f"c{i % 15}" for i in range(600)], index=[f"s{i}" for i in range(600)])
    sources = labels.iloc[:300]
    classes, orig, pert = tl.choose_tsne_samples(labels, sources, "c3", n_perturbed=100, n_classes=10,
                                                 max_original=200, seed=0)
    assert classes[0] == "c3" and len(classes) == 10 and len(set(classes)) == 10
    assert len(pert) == 100 and len(set(pert)) == 100
    assert all(labels[s] in classes and labels[s] != "c3" for s in pert)
    assert set(pert) <= set(orig)  # the perturbed samples' own originals are in the map
    assert set(labels[orig]) == set(classes)
    assert len(orig) <= 200 + 100
    again = tl.choose_tsne_samples(labels, sources, "c3", 100, 10, 200, seed=0)
    assert again == (classes, orig, pert)
    all_classes, _, all_pert = tl.choose_tsne_samples(labels, sources, "c3", None, None, None)
    assert len(all_classes) == 15 and len(all_pert) == 280


def test_a_small_map_projects_without_opentsnes_perplexity_warning(caplog):
    x, _, centers = _blobs(n=4)  # 12 samples: openTSNE's transform would lower its perplexity 5 itself, warning
    y = pd.DataFrame(centers[0] + np.random.default_rng(2).normal(size=(3, 20)), index=["p0", "p1", "p2"])
    with caplog.at_level("WARNING", logger="openTSNE"):
        m = tl.tsne_map(x, y, n_pcs=5, seed=0)
    assert m.perturbed.shape == (3, 2) and np.isfinite(m.perturbed.to_numpy()).all()
    assert not [r for r in caplog.records if r.name.startswith("openTSNE")]
