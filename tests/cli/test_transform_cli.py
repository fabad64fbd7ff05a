"""`tspg run --transform`: linear counts in, log units out, one warning line when the transform is missing."""

import json

import numpy as np
import pandas as pd
import pytest
from clihelp import tspg

from tspg._names import target_dirname
from tspg.data import make_atlas

COUNTS_WARNING = "look like linear counts"


@pytest.fixture(scope="module")
def counts_files(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=150, samples_per_class=30, n_markers=10, seed=11)
    counts = np.round(np.exp2(atlas.gem) - 1.0)
    folder = tmp_path_factory.mktemp("counts")
    counts.to_csv(folder / "counts.tsv", sep="\t")
    atlas.labels.rename("label").to_csv(folder / "labels.tsv", sep="\t")
    bad = counts.iloc[:3].copy()
    bad.iloc[0, 0] = -5.0
    bad.to_csv(folder / "negative.tsv", sep="\t")
    return atlas, folder


def test_counts_without_a_transform_warn_in_one_line(counts_files, tmp_path):
    _, folder = counts_files
    proc = tspg("train-classifier", "--data", folder / "counts.tsv", "--labels", folder / "labels.tsv",
                "--out", tmp_path / "run", "--classifier-epochs", "2", "--quiet")
    lines = [ln for ln in proc.stderr.splitlines() if COUNTS_WARNING in ln]
    assert len(lines) == 1 and "--transform log2p1" in lines[0], proc.stderr
    assert "Warning:" not in proc.stderr and "site-packages" not in proc.stderr  # no third-party text


@pytest.mark.slow
def test_a_log2p1_run_lands_near_the_real_target_samples_and_writes_log_units(counts_files, tmp_path):
    atlas, folder = counts_files
    target = sorted(atlas.labels.unique())[0]
    out = tmp_path / "run"
    proc = tspg("run", "--data", folder / "counts.tsv", "--labels", folder / "labels.tsv", "--target", target,
                "--transform", "log2p1", "--out", out, "--epochs", "20", "--no-figures", "--quiet")
    assert COUNTS_WARNING not in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["transform"] == "log2p1"
    assert manifest["expression_units"] == "log2(x + 1) of the input"
    tdir = out / target_dirname(target)
    perturbed = pd.read_csv(tdir / "perturbed.tsv", sep="\t", index_col=0)
    delta = pd.read_csv(tdir / "perturbations.tsv", sep="\t", index_col=0)
    counts = pd.read_csv(folder / "counts.tsv", sep="\t", index_col=0).loc[perturbed.index, perturbed.columns]
    np.testing.assert_allclose((perturbed - delta).to_numpy(), np.log2(counts.to_numpy() + 1.0), atol=1e-3)
    ev = pd.read_csv(tdir / "evaluation.tsv", sep="\t")
    ev = ev[ev["source"] == "all"].set_index("method")
    ratio = ev.loc["tspg", "energy_distance"] / ev.loc["real_target_train", "energy_distance"]
    assert ev.loc["tspg", "success_f"] >= 0.95
    assert ratio <= 1.5, ratio
    # a later input is transformed the run's way; negative counts are refused in one line, exit code 2
    again = tspg("perturb", out, "--target", target, "--perturb-data", folder / "negative.tsv", check=False)
    assert again.returncode == 2 and "negative value" in again.stderr and "Traceback" not in again.stderr
