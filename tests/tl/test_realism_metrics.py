"""Realism metrics of the evaluation: gene-space distances, the two-sample test, specificity, the collapse baseline."""

import numpy as np
import pandas as pd
import pytest

from tspg import tl
from tspg.data import make_paired_atlas
from tspg.tl._evaluate import behind_baselines, behind_sentence, best_baseline
from tspg.tl._metrics import METRICS, MetricInput, c2st_auc


def test_c2st_is_half_for_one_distribution_and_one_for_two():
    rng = np.random.default_rng(0)
    same = [c2st_auc(rng.normal(0, 1, (60, 5)), rng.normal(0, 1, (60, 5)), seed=s) for s in range(5)]
    assert 0.35 < np.mean(same) < 0.65
    assert c2st_auc(rng.normal(0, 1, (60, 5)), rng.normal(1.5, 1, (60, 5))) > 0.95
    assert np.isnan(c2st_auc(np.zeros((1, 3)), np.ones((5, 3))))


def test_c2st_sees_collapse_onto_the_mean():
    # a linear model on the coordinates cannot tell a point mass at the mean from the distribution; the squares can
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (80, 6))
    collapsed = np.zeros((80, 6)) + rng.normal(0, 0.01, (80, 6))
    assert c2st_auc(collapsed, real) > 0.9


def test_specificity_is_zero_for_one_shift_and_one_for_the_truth():
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 0.1, (40, 12))
    delta = rng.normal(0.2, 0.05, (40, 12))
    spec = METRICS["specificity"]
    assert spec(MetricInput(x_adv=x + delta, x=x, true_delta=delta)) == pytest.approx(1.0)
    assert spec(MetricInput(x_adv=x + delta.mean(0), x=x, true_delta=delta)) == pytest.approx(0.0, abs=1e-9)
    assert spec(MetricInput(x_adv=x, x=x, true_delta=delta)) < 0
    assert np.isnan(spec(MetricInput(x_adv=x, x=x)))


def _two_classes(seed: int, genes: int, shift: float, baselines: list[str]):
    """Classes a and b (60 samples each, b shifted by ``shift`` in every gene), split 2:1; references, baselines."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b"], 60)
    x = np.clip(rng.normal(0.5, 0.1, (120, genes)) + shift * (y == "b")[:, None], 0, 1).astype("float32")
    tr, te = np.arange(120) % 3 != 0, np.arange(120) % 3 == 0
    refs = tl.fit_references(x[tr], y[tr], seed=0)
    return x, y, tr, te, refs, tl.perturb_baselines(x[tr], y[tr], x[te], y[te], "b", names=baselines)


def test_target_mean_baseline_collapses_and_is_exposed_by_every_distribution_metric():
    x, y, tr, te, refs, methods = _two_classes(3, 30, 0.2, ["mean_shift", "target_mean"])
    src = te & (y == "a")
    assert np.allclose(methods["target_mean"][y[te] == "a"], x[tr][y[tr] == "b"].mean(0), atol=1e-6)
    frame = tl.evaluate(refs, x[te], y[te], "b", methods, seed=0).set_index(["method", "source"])
    ms, tm = frame.loc[("mean_shift", "all")], frame.loc[("target_mean", "all")]
    assert src.sum() == ms["n"]
    for metric in ("energy_distance", "energy_distance_genes", "mmd_genes", "c2st_auc"):
        assert tm[metric] > ms[metric], metric
    assert tm["c2st_auc"] > 0.9 and ms["c2st_auc"] < 0.75
    floor = frame.loc[("real_target_train", "all")]
    assert np.isfinite(floor["energy_distance_genes"]) and np.isnan(floor["c2st_auc"])
    assert np.isnan(floor["success_f"])  # no classifier f given


def test_the_floor_rows_success_is_the_classifiers_recall_of_the_real_held_out_target_samples():
    from tspg.workflow import headline, headline_text

    # two overlapping classes: a classifier calls only part of the real b samples b
    x, y, tr, te, refs, methods = _two_classes(5, 20, 0.05, ["mean_shift"])

    def classify(v):  # a stand-in f: b where the first gene is high
        return np.where(v[:, 0] > 0.52, "b", "a")

    frame = tl.evaluate(refs, x[te], y[te], "b", methods, classify=classify, seed=0)
    real_b = x[te][y[te] == "b"]
    want = {"success_f": np.mean(classify(real_b) == "b"),
            **{f"success_{k}": np.mean(v) for k, v in refs.calls(real_b, "b").items() if k in ("logreg", "knn")}}
    assert 0.0 < want["success_f"] < 1.0 and 0.0 < want["success_logreg"] < 1.0  # overlapping: a real share
    floors = frame[frame["method"] == "real_target_train"]
    assert len(floors) == 2  # source a and all: the same recall in each
    for k, v in want.items():
        np.testing.assert_allclose(floors[k].to_numpy(), v)
    h = headline(frame, "mean_shift")
    assert (h["success_f_floor"], h["success_logreg_floor"], h["success_knn_floor"]) == pytest.approx(
        (want["success_f"], want["success_logreg"], want["success_knn"]))
    assert "(real held-out target samples: {:.3f}, {:.3f}, {:.3f})".format(
        want["success_f"], want["success_logreg"], want["success_knn"]) in headline_text(h)
    # both energy distances beside their floor (real target training samples vs held-out ones)
    genes_floor = float(floors[floors["source"] == tl.ALL]["energy_distance_genes"].iloc[0])
    assert h["energy_distance_genes_floor"] == genes_floor
    assert f"in the gene space (floor {genes_floor:.3g})" in headline_text(h)
    # without a floor the headline says nothing of it
    bare = tl.evaluate(refs, x[te], y[te], "b", methods, classify=classify, seed=0, floor=False)
    assert "real held-out target samples" not in headline_text(headline(bare, "mean_shift"))


def _frame(rows):
    return pd.DataFrame([{"method": m, "source": "all", "n": 5, **v} for m, v in rows.items()])


def test_behind_baselines_names_each_metric_a_baseline_does_better():
    frame = _frame({"tspg": {"energy_distance": 0.3, "c2st_auc": 0.55, "success_f": 1.0},
                    "mean_shift": {"energy_distance": 0.2, "c2st_auc": 0.7, "success_f": 0.9},
                    "optimal_transport": {"energy_distance": 0.25, "c2st_auc": 0.5, "success_f": 1.0},
                    "identity": {"energy_distance": 0.01, "c2st_auc": 0.1, "success_f": 0.0}})
    assert best_baseline(frame, "energy_distance") == ("mean_shift", 0.2)  # identity makes no transition
    behind = behind_baselines(frame, metrics=["energy_distance", "c2st_auc", "success_f"])
    assert [(b["metric"], b["baseline"]) for b in behind] == [("energy_distance", "mean_shift"),
                                                              ("c2st_auc", "optimal_transport")]
    text = behind_sentence(frame)
    assert "behind" in text and "energy_distance (mean_shift 0.200 vs TSPG 0.300)" in text
    ahead = _frame({"tspg": {"energy_distance": 0.1}, "mean_shift": {"energy_distance": 0.2}})
    assert "best or tied" in behind_sentence(ahead)


def test_a_two_sample_auc_below_one_half_is_not_better_than_one_half():
    # an AUC of 0 tells the sets apart as well as 1 (the other way round); below 0.5 on a few samples is chance
    frame = _frame({"tspg": {"c2st_auc": 0.55}, "mean_shift": {"c2st_auc": 0.40},
                    "target_mean": {"c2st_auc": 0.0}, "optimal_transport": {"c2st_auc": 0.70}})
    assert best_baseline(frame, "c2st_auc") == ("mean_shift", 0.40)
    assert behind_baselines(frame, metrics=["c2st_auc"]) == []
    closer = _frame({"tspg": {"c2st_auc": 0.62}, "mean_shift": {"c2st_auc": 0.45}})
    assert [(b["baseline"], b["baseline_value"]) for b in behind_baselines(closer, metrics=["c2st_auc"])] == [
        ("mean_shift", 0.45)]


def test_paired_atlas_knows_each_samples_own_transition():
    atlas = make_paired_atlas(n_individuals=40, n_genes=300, seed=4, noise=0.01)
    ind, lab, d = atlas.individuals, atlas.labels, atlas.true_delta
    a = lab[lab == "Normal"].index
    b = pd.Index([i.replace("_A", "_B") for i in a])
    # with almost no noise, the other state's sample is this sample plus its own true transition
    moved = atlas.gem.loc[a].to_numpy() + d.loc[a].to_numpy()
    assert np.abs(moved - atlas.gem.loc[b].to_numpy()).max() < 0.1
    assert (ind.loc[a].to_numpy() == ind.loc[b].to_numpy()).all()
    # the transition differs between samples of one class on the response programs, not elsewhere
    response = sorted({g for k, v in atlas.gene_sets.items() if k.startswith("RESPONSE") for g in v})
    other = sorted({g for k, v in atlas.gene_sets.items() if k.startswith("PROGRAM") for g in v})
    assert d.loc[a, response].std().mean() > 0.2
    assert d.loc[a, other].std().max() < 1e-5
    assert np.allclose(d.loc[b].to_numpy(), -d.loc[a].to_numpy().reshape(-1, 300)[[list(a).index(
        i.replace("_B", "_A")) for i in b]], atol=1e-5)


@pytest.mark.parametrize("paired", [False, True])
def test_new_draws_follow_the_atlas_distribution(paired):
    from tspg.data import make_atlas

    atlas = (make_paired_atlas(n_individuals=150, n_genes=300, seed=3) if paired
             else make_atlas(n_classes=3, n_genes=300, samples_per_class=150, seed=3))
    cls = "Tumour" if paired else "Liver"
    real = atlas.gem[atlas.labels == cls].to_numpy(np.float64)
    new = atlas.draw(cls, 600, seed=1)
    assert new.shape == (600, 300) and list(new.columns) == list(atlas.gem.columns) and (new.to_numpy() >= 0).all()
    # per gene, the new mean is within the noise of the two means (the largest of 300 z-scores stays below 4.5),
    # and so is the spread; a different class's draws are far from it
    se = np.sqrt(real.var(0, ddof=1) / len(real) + new.var(0, ddof=1) / 600)
    assert np.abs((new.mean(0) - real.mean(0)) / se).max() < 4.5
    assert np.abs(np.log(new.std(0) / real.std(0))).mean() < 0.08
    other = atlas.draw("Normal" if paired else "Lung", 600, seed=1).to_numpy()
    assert np.abs((other.mean(0) - real.mean(0)) / se).max() > 10
    # the same seed gives the same draws; a two-sample test cannot tell new draws from real ones
    np.testing.assert_array_equal(atlas.draw(cls, 5, seed=2).to_numpy(), atlas.draw(cls, 5, seed=2).to_numpy())
    assert c2st_auc(new.to_numpy()[:150, :40], real[:, :40]) < 0.62
    with pytest.raises(ValueError, match="no class"):
        atlas.draw("Spleen", 3)
