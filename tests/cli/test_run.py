import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clihelp import tspg

from tspg.data import make_atlas

# every test here runs a whole `tspg run` or `tspg demo`, or uses the module's run
pytestmark = pytest.mark.slow

FAST = ["--classifier-epochs", "5", "--epochs", "3", "--quiet"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=50, samples_per_class=30, n_markers=5, seed=7)
    return atlas, atlas.write(tmp_path_factory.mktemp("inputs"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_dir(inputs, tmp_path_factory):
    """The module's run, read-only: a test that writes into a run folder takes its own copy (``own_run``)."""
    _, paths = inputs
    out = tmp_path_factory.mktemp("runs") / "r1"
    tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--target",
         "Heart - Left Ventricle", "--out", out, "--seed", 3, *FAST)
    written = _files(out)
    yield out
    assert _files(out) == written, "a test changed the module's run folder; give it its own copy (own_run)"


@pytest.fixture
def own_run(run_dir, tmp_path):
    """A copy of the module's run for a test that writes into it (so tests pass alone and in any order)."""
    return shutil.copytree(run_dir, tmp_path / run_dir.name)


def test_output_folder_contract(run_dir, inputs):
    atlas, _ = inputs
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in ("config", "seed", "versions", "genes", "classes", "scaler", "split", "inputs", "targets"):
        assert key in manifest
    assert manifest["seed"] == 3 and manifest["genes"] == list(atlas.gem.columns)
    assert len(manifest["inputs"]["sha256"]["data"]) == 64
    clf = json.loads((run_dir / "classifier_metrics.json").read_text())
    assert 0.0 <= clf["accuracy"] <= 1.0 and clf["n_test"] == len(manifest["split"]["test"]) == 18
    assert (run_dir / "classifier.safetensors").read_bytes()[:8] != b"\x80\x02"  # not a pickle
    for target, folder in (("Liver", "Liver"), ("Heart - Left Ventricle", "Heart_-_Left_Ventricle")):
        d = run_dir / folder
        names = {"generator.safetensors", "metrics.json", "perturbed.tsv", "perturbations.tsv", "perturbed_scaled.tsv",
                 "perturbations_scaled.tsv", "predictions.tsv", "history.tsv", "mean_shift.tsv"}
        assert names <= {p.name for p in d.iterdir()}
        m = json.loads((d / "metrics.json").read_text())
        assert m["target"] == target and m["n_perturbed"] == 18
        pred = pd.read_csv(d / "predictions.tsv", sep="\t", index_col=0)
        assert list(pred.columns) == ["label", "part", "predicted_before", "predicted_after", "prob_target_before",
                                      "prob_target_after"]
        fresh = pred["predicted_before"] != target
        assert m["perturbation_accuracy"] == pytest.approx((pred.loc[fresh, "predicted_after"] == target).mean(),
                                                           abs=1e-6)
        assert set(pred.index) == set(manifest["split"]["test"]) and (pred["part"] == "test").all()
        # units: perturbed = original + perturbation, in original expression units
        perturbed = pd.read_csv(d / "perturbed.tsv", sep="\t", index_col=0)
        delta = pd.read_csv(d / "perturbations.tsv", sep="\t", index_col=0)
        orig = atlas.gem.loc[perturbed.index, perturbed.columns]
        np.testing.assert_allclose(perturbed.to_numpy(), orig.to_numpy() + delta.to_numpy(), atol=2e-3)
        scaled = pd.read_csv(d / "perturbed_scaled.tsv", sep="\t", index_col=0).to_numpy()
        lo, rng = np.array(manifest["scaler"]["min"]), np.array(manifest["scaler"]["range"])
        x = (orig.to_numpy() - lo) / rng
        # x_adv is clipped to [0, 1], except that a held-out value outside [0, 1] bounds its own side
        assert (scaled >= np.minimum(x, 0) - 1e-5).all() and (scaled <= np.maximum(x, 1) + 1e-5).all()
        inside = (x >= 0) & (x <= 1)
        assert scaled[inside].min() >= 0.0 and scaled[inside].max() <= 1.0
        shift = pd.read_csv(d / "mean_shift.tsv", sep="\t", index_col=0)
        assert list(shift.index) == manifest["classes"]
        assert np.allclose(shift.loc[target].to_numpy(), 0.0)
        hist = pd.read_csv(d / "history.tsv", sep="\t")
        # epoch 0 is the transport prior alone (the default --prior ot), then the 3 trained epochs
        assert hist["epoch"].tolist() == [0, 1, 2, 3] and hist.loc[0, ["d_loss", "g_loss"]].isna().all()
        assert {"d_loss", "g_loss", "gan", "adv", "norm", "td", "val_accuracy"} <= set(hist.columns)
    assert not list(run_dir.rglob("*.tmp"))


def test_same_seed_gives_identical_files(run_dir, inputs, tmp_path):
    _, paths = inputs
    again = tmp_path / "again"
    tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--target",
         "Heart - Left Ventricle", "--out", again, "--seed", 3, *FAST)
    a, b = _files(run_dir), _files(again)
    assert a.keys() == b.keys()
    # the report names its folder; apart from that every byte is the same
    b["report.html"] = b["report.html"].replace(b"tspg report: again", f"tspg report: {run_dir.name}".encode())
    assert [k for k in a if a[k] != b[k]] == []
    assert any(k.endswith(".svg") for k in a) and "evaluation.md" in a and "Liver/tsne.tsv" in a


def test_other_seed_gives_other_split(run_dir, inputs, tmp_path):
    _, paths = inputs
    other = tmp_path / "other"
    tspg("train-classifier", "--data", paths["data"], "--labels", paths["labels"], "--out", other, "--seed", 4,
         "--classifier-epochs", "2", "--quiet")
    a = json.loads((run_dir / "manifest.json").read_text())["split"]["test"]
    b = json.loads((other / "manifest.json").read_text())["split"]["test"]
    assert sorted(a) != sorted(b)


def test_phase_commands_reproduce_run(run_dir, inputs, tmp_path):
    _, paths = inputs
    phased = tmp_path / "phased"
    tspg("train-classifier", "--data", paths["data"], "--labels", paths["labels"], "--out", phased, "--seed", 3,
         "--classifier-epochs", "5", "--quiet")
    tspg("train-generator", phased, "--target", "Liver", "--epochs", "3", "--quiet")
    tspg("perturb", phased, "--target", "Liver", "--quiet", "--no-figures")
    for name in ("classifier.safetensors", "classifier_metrics.json", "Liver/generator.safetensors",
                 "Liver/perturbed.tsv", "Liver/metrics.json", "Liver/predictions.tsv"):
        assert (phased / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_perturb_all_and_external_data(own_run, inputs, tmp_path):
    atlas, paths = inputs
    run_dir = own_run
    tspg("perturb", run_dir, "--target", "Liver", "--perturb", "all", "--quiet", "--no-figures")
    m = json.loads((run_dir / "Liver" / "metrics.json").read_text())
    assert m["n_perturbed"] == len(atlas.gem) == 90 and m["perturbed_samples"] == "all"
    ext = atlas.gem.iloc[:7].rename(index=lambda s: f"new_{s}")
    ext.to_csv(tmp_path / "new.csv")
    out = tspg("perturb", run_dir, "--target", "Liver", "--perturb-data", tmp_path / "new.csv", "--quiet")
    pred = pd.read_csv(run_dir / "Liver" / "predictions.tsv", sep="\t", index_col=0)
    assert list(pred.index) == list(ext.index) and (pred["part"] == "external").all()
    assert "perturbation accuracy" in out.stdout
    # a GEM without the model's genes is refused with one line
    ext.iloc[:, :10].to_csv(tmp_path / "few.csv")
    bad = tspg("perturb", run_dir, "--target", "Liver", "--perturb-data", tmp_path / "few.csv", "--quiet", check=False)
    assert bad.returncode == 2 and "lacks 40 of the model's 50 genes" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_existing_run_is_not_overwritten_without_force(run_dir, inputs):
    _, paths = inputs
    before = _files(run_dir)
    proc = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", run_dir,
                *FAST, check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert _files(run_dir) == before


def test_demo_quick_writes_inputs_and_a_complete_run(tmp_path):
    out = tmp_path / "demo"
    proc = tspg("demo", "--out", out, "--quick", "--quiet")
    assert "target 'Liver': perturbation accuracy" in proc.stdout
    assert {p.name for p in (out / "input").iterdir()} == {"gem.tsv", "labels.tsv", "gene_sets.gmt"}
    gem = pd.read_csv(out / "input" / "gem.tsv", sep="\t", index_col=0)
    assert gem.shape == (180, 200)
    m = json.loads((out / "run" / "Liver" / "metrics.json").read_text())
    assert m["n_perturbed"] == 36
    # the demo also writes the top genes and their enrichment against its own gene sets
    assert m["unique_top_up"] >= 20 and len(m["consensus_up"]) == 20
    for name in ("top_genes_per_sample.tsv", "top_genes.tsv", "top_genes_by_source.tsv", "enrichment_up.tsv",
                 "enrichment_down.tsv"):
        assert (out / "run" / "Liver" / name).exists(), name
    enr = pd.read_csv(out / "run" / "Liver" / "enrichment_up.tsv", sep="\t")
    assert list(enr.columns) == ["library", "term", "overlap", "term_size", "query_size", "background_size", "p", "q",
                                 "genes"]
    assert (enr["background_size"] == 200).all()
    again = tspg("demo", "--out", out, "--quick", "--quiet", check=False)
    assert again.returncode == 2 and "--force" in again.stderr


def test_genes_leaves_the_targets_own_samples_out(own_run, inputs, caplog):
    from tspg.workflow._run import genes_phase

    atlas, _ = inputs
    folder = own_run / "Liver"
    pert = pd.read_csv(folder / "perturbations_scaled.tsv", sep="\t", index_col=0)
    pred = pd.read_csv(folder / "predictions.tsv", sep="\t", index_col=0)
    own = pred.index[pred["label"] == "Liver"]
    assert 0 < len(own) < len(pred)
    # a target sample moved (as G moves them where its training is kept), by a large move in one gene
    moved = pert.copy()
    moved.loc[own] = 0.0
    moved.loc[own, moved.columns[-1]] = 5.0
    moved.to_csv(folder / "perturbations_scaled.tsv", sep="\t", float_format="%.7g")
    m = genes_phase(own_run, "Liver", k=5, rank_units="scaled")
    per_sample = pd.read_csv(folder / "top_genes_per_sample.tsv", sep="\t")
    assert not set(per_sample["sample"]) & set(own)
    top = pd.read_csv(folder / "top_genes.tsv", sep="\t", index_col=0)
    others = pred.index.difference(own)
    assert top.loc[moved.columns[-1], "mean_perturbation"] == pytest.approx(moved.loc[others, moved.columns[-1]].mean())
    assert top["count_up"].sum() + top["count_down"].sum() == len(per_sample)
    assert (top["fraction_up"] * len(others)).round(6).equals(top["count_up"].astype(float))
    # only target samples perturbed: they are used, with a warning that says so
    pred.loc[own].to_csv(folder / "predictions.tsv", sep="\t")
    moved.loc[own].to_csv(folder / "perturbations_scaled.tsv", sep="\t", float_format="%.7g")
    with caplog.at_level("WARNING", logger="tspg.workflow._run"):
        m = genes_phase(own_run, "Liver", k=5, rank_units="scaled")
    assert "every perturbed sample is of the target class itself" in caplog.text
    assert m["consensus_up"][0] == moved.columns[-1]


def test_genes_keeps_sample_names_that_look_like_numbers(own_run):
    from tspg.workflow._run import genes_phase

    folder = own_run / "Liver"
    pert = pd.read_csv(folder / "perturbations_scaled.tsv", sep="\t", index_col=0)
    pred = pd.read_csv(folder / "predictions.tsv", sep="\t", index_col=0)
    names = [f"{i:04d}" for i in range(len(pert))]  # patient IDs like 0007: not the number 7
    for i, name in zip(np.flatnonzero(pred["label"].to_numpy() != "Liver")[:3], ["NA", "null", "nan"], strict=True):
        names[i] = name  # names, not missing values
    pert.index = pred.index = names
    pert.to_csv(folder / "perturbations_scaled.tsv", sep="\t", float_format="%.7g")
    pred.to_csv(folder / "predictions.tsv", sep="\t")
    genes_phase(own_run, "Liver", k=5, rank_units="scaled")
    per_sample = pd.read_csv(folder / "top_genes_per_sample.tsv", sep="\t", dtype={"sample": str},
                             keep_default_na=False)
    assert set(per_sample["sample"]) == set(pred.index[pred["label"] != "Liver"]) >= {"NA", "null", "nan"}


def test_genes_and_enrich_commands_on_a_run(own_run, inputs):
    atlas, paths = inputs
    run_dir = own_run
    proc = tspg("genes", run_dir, "--target", "Liver", "--top-k", "5", "--rank-units", "scaled", "--quiet")
    assert "top genes written for Liver" in proc.stdout
    per_sample = pd.read_csv(run_dir / "Liver" / "top_genes_per_sample.tsv", sep="\t")
    assert list(per_sample.columns) == ["sample", "source", "direction", "rank", "gene", "perturbation"]
    assert per_sample["rank"].max() == 5
    pert = pd.read_csv(run_dir / "Liver" / "perturbations_scaled.tsv", sep="\t", index_col=0)
    # the target's own samples are not transitions (their perturbation may be exactly 0) and are not listed
    listed = per_sample["sample"].unique()
    assert set(listed) == set(pert.index[pert.abs().sum(axis=1) > 0]) - set(atlas.labels.index[atlas.labels == "Liver"])
    first = per_sample[(per_sample["sample"] == listed[0]) & (per_sample["direction"] == "up")]
    assert first["gene"].tolist() == list(pert.loc[listed[0]].sort_values(ascending=False, kind="stable").index[:5])
    m = json.loads((run_dir / "Liver" / "metrics.json").read_text())
    assert m["top_k"] == 5 and m["rank_units"] == "scaled" and len(m["consensus_up"]) == 5
    proc = tspg("enrich", run_dir, "--target", "Liver", "--enrich-gmt", paths["gene_sets"], "--quiet")
    assert proc.stdout.startswith("Liver up: top term")
    bad = tspg("enrich", run_dir, "--target", "Lung", "--enrich-gmt", paths["gene_sets"], check=False)
    assert bad.returncode == 2 and "No target 'Lung'" in bad.stderr
