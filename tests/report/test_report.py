"""The figures, report and AnnData export of a run, through the CLI; the report rendered in headless Chromium."""

import os
import re
import shutil
import subprocess
import tempfile

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from clihelp import tspg

from tspg.data import make_atlas

FAST = ["--classifier-epochs", "5", "--epochs", "3", "--quiet"]
# slow: the tests that use the module's run (a whole `tspg run`, over 10 s)


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The module's run, read-only: a test that writes into a run folder takes its own copy (``own_run``)."""
    atlas = make_atlas(n_classes=4, n_genes=80, samples_per_class=30, n_markers=5, seed=2)
    paths = atlas.write(tmp_path_factory.mktemp("in"))
    out = tmp_path_factory.mktemp("runs") / "r"
    tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--target", "Lung",
         "--out", out, "--seed", 1, "--enrich-gmt", paths["gene_sets"], "--heatmap-samples", 2, *FAST)
    written = _files(out)
    yield out, atlas
    assert _files(out) == written, "a test changed the module's run folder; give it its own copy (own_run)"


@pytest.fixture
def own_run(run, tmp_path):
    """A copy of the module's run (same folder name) for a test that writes into it."""
    out, atlas = run
    return shutil.copytree(out, tmp_path / out.name), atlas


@pytest.mark.slow
def test_run_writes_figures_and_report_without_extra_flags(run):
    out, _ = run
    assert (out / "plots" / "classifier_history.png").exists() and (out / "data_summary.tsv").exists()
    for t in ("Liver", "Lung"):
        plots = out / t / "plots"
        stems = {p.stem for p in plots.glob("*.png")}
        assert {"tsne", "panel", "history"} <= stems
        assert len([s for s in stems if s.startswith("heatmap_") and not s.endswith("_expr")]) == 2
        assert len([s for s in stems if s.endswith("_expr")]) == 2
        assert {p.stem for p in plots.glob("*.svg")} == stems
        tsne = pd.read_csv(out / t / "tsne.tsv", sep="\t", dtype={"sample": str})
        assert set(tsne["kind"]) == {"original", "perturbed_before", "perturbed"}
        pert = tsne[tsne["kind"] == "perturbed"]
        assert len(pert) == len(tsne[tsne["kind"] == "perturbed_before"]) > 0
        assert (pert["class"] != t).all()
    summary = pd.read_csv(out / "data_summary.tsv", sep="\t")
    assert list(summary.columns) == ["class", "train", "val", "test", "total"] and summary["total"].sum() == 120


@pytest.mark.slow
def test_report_is_self_contained_and_shows_the_results(run):
    out, _ = run
    page = (out / "report.html").read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|file:|/)', page)
    # classifier history + per target: t-SNE, 2 heatmaps, panel, history
    assert len(srcs) == 1 + 2 * 5
    import json

    clf = json.loads((out / "classifier_metrics.json").read_text())
    assert f"{clf['accuracy']:.3f}" in page
    for t in ("Liver", "Lung"):
        m = json.loads((out / t / "metrics.json").read_text())
        assert f"Target: {t}" in page and f"{m['perturbation_accuracy']:.3f}" in page
        top_up = pd.read_csv(out / t / "enrichment_up.tsv", sep="\t").iloc[0]
        assert top_up["term"] in page
        assert m["consensus_up"][0] in page


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "headless Chromium is not installed (Debian package 'chromium')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; .ci/run installs it, so in CI it must be present")
        pytest.skip(reason)
    return exe


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run, tmp_path):
    out, _ = run
    exe = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]
    url = (out / "report.html").resolve().as_uri()
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "tspg report" in dom.stdout and "Target: Liver" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([exe, *flags, "--window-size=1200,2400", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120, check=True)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1200)
    # a rendered page with text and figures, not a blank or error page: many dark pixels, varied content
    assert (img < 100).mean() > 0.01 and img.std() > 20


@pytest.mark.slow
def test_figures_and_report_are_reproducible(own_run):
    out, _ = own_run
    files = sorted([*out.glob("*/plots/*"), *out.glob("plots/*"), *out.glob("*/tsne.tsv"), out / "report.html"])
    before = {p: p.read_bytes() for p in files}
    tspg("plot", out, "--heatmap-samples", 2, "--quiet")
    assert sorted([*out.glob("*/plots/*"), *out.glob("plots/*"), *out.glob("*/tsne.tsv"), out / "report.html"]) == files
    assert [str(p.relative_to(out)) for p in files if p.read_bytes() != before[p]] == []


@pytest.mark.slow
def test_plot_command_draws_named_samples_and_joint_maps(own_run):
    out, _ = own_run
    pred = pd.read_csv(out / "Liver" / "predictions.tsv", sep="\t", index_col=0, dtype={"label": str})
    name = str(pred.index[pred["label"] != "Liver"][-1])
    tspg("plot", out, "--target", "Liver", "--heatmap-samples", name, "--tsne-mode", "joint", "--quiet")
    stems = {p.stem for p in (out / "Liver" / "plots").glob("*.png")}
    assert {f"heatmap_{name}", f"heatmap_{name}_expr"} <= stems
    assert len([s for s in stems if s.startswith("heatmap_")]) == 2  # the earlier random ones are gone
    bad = tspg("plot", out, "--target", "Liver", "--heatmap-samples", "nope", "--heatmap-samples", "x", check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_writes_anndata_with_every_perturbed_sample(run, tmp_path):
    out, atlas = run
    path = tmp_path / "liver.h5ad"
    tspg("export", out, "--target", "Liver", "--h5ad", path, "--quiet")
    a = ad.read_h5ad(path)
    pred = pd.read_csv(out / "Liver" / "predictions.tsv", sep="\t", index_col=0)
    assert list(a.obs_names) == [str(s) for s in pred.index]
    np.testing.assert_allclose(a.X, atlas.gem.loc[a.obs_names, a.var_names].to_numpy(), atol=2e-3)
    perturbed = pd.read_csv(out / "Liver" / "perturbed.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(a.layers["tspg_perturbed"], perturbed.loc[a.obs_names].to_numpy(), rtol=1e-6)
    assert np.isfinite(a.obsm["X_tspg_tsne"]).all() and a.obsm["X_tspg_tsne"].shape == (a.n_obs, 2)
    assert a.uns["tspg"]["target"] == "Liver"
    assert {"predicted_before", "predicted_after", "part"} <= set(a.obs.columns)
    many = tspg("export", out, "--h5ad", tmp_path / "x.h5ad", check=False)
    assert many.returncode == 2 and "--target" in many.stderr and not (tmp_path / "x.h5ad").exists()


def test_report_command_refuses_a_folder_that_is_not_a_run(tmp_path):
    proc = tspg("report", tmp_path, check=False)
    assert proc.returncode == 2 and "not a tspg run folder" in proc.stderr
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_run_evaluates_tspg_against_baselines_on_held_out_samples(run):
    out, _ = run
    md = (out / "evaluation.md").read_text()
    assert "## Liver" in md and "## Lung" in md and "real_target_train" in md
    for t in ("Liver", "Lung"):
        ev = pd.read_csv(out / t / "evaluation.tsv", sep="\t")
        assert {"tspg", "identity", "mean_shift", "optimal_transport", "nearest_target", "target_mean",
                "real_target_train"} == set(
            ev["method"])
        rows = ev[ev["source"] == "all"].set_index("method")
        assert rows.loc["identity", "success_logreg"] == 0 and rows.loc["identity", "l2"] == 0
        assert rows.loc["tspg", "n"] == 24 - 6  # held-out samples not of the target class
        import json

        m = json.loads((out / t / "metrics.json").read_text())
        # f's success on the non-target held-out samples agrees with the per-source perturbation metrics
        by = {s: v for s, v in m["by_source"].items() if s != t}
        hits = sum(v["perturbation_accuracy"] * v["n_not_already_target"] for v in by.values())
        fresh = sum(v["n_not_already_target"] for v in by.values())
        assert rows.loc["tspg", "success_f"] == pytest.approx(hits / fresh)
    page = (out / "report.html").read_text()
    assert "TSPG against baselines" in page and "optimal_transport" in page


@pytest.mark.slow
def test_evaluate_command_prints_the_headline(own_run):
    out, _ = own_run
    proc = tspg("evaluate", out, "--target", "Liver", "--quiet")
    assert "Liver: called the target by f" in proc.stdout and "independent logistic regression" in proc.stdout
    assert "floor" in proc.stdout
