"""Run-folder safety: early checks before training, --force, reloading with changed inputs, folder names."""

import json
from functools import partial

import pandas as pd
import pytest
from clihelp import tspg as _tspg

from tspg.data import make_atlas
from tspg.model import target_dirname

tspg = partial(_tspg, check=False)
FAST = ["--classifier-epochs", "2", "--epochs", "1", "--quiet", "--no-figures", "--no-evaluate"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=20, n_markers=4, seed=5)
    return atlas, atlas.write(tmp_path_factory.mktemp("inputs"))


def _one_line_error(proc, *words):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_dot_names_stay_inside_the_run_folder():
    assert target_dirname("..") == "_."
    assert target_dirname(".hidden") == "_hidden"
    assert target_dirname("manifest.json") == "_manifest.json"


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [("--seed", "-1", "--seed"), ("--device", "cuda:7", "CUDA"), ("--device", "tpu", "--device"),
     ("--kappa", "nan", "--kappa"), ("--w-td", "-1", "--w-td")],
)
def test_bad_numbers_and_devices_are_one_line_errors(inputs, tmp_path, option, value, word):
    _, paths = inputs
    if option == "--device" and value.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = tmp_path / "out"
    proc = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
                option, value, *FAST)
    _one_line_error(proc, word)
    assert not out.exists()


def test_bad_perturb_data_is_refused_before_training(inputs, tmp_path):
    atlas, paths = inputs
    few = tmp_path / "few.tsv"
    atlas.gem.iloc[:5, :10].to_csv(few, sep="\t")
    out = tmp_path / "out"
    proc = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
                "--perturb-data", few, *FAST)
    _one_line_error(proc, "lacks 30 of the model's 40 genes")
    assert not out.exists()


@pytest.mark.slow  # two whole `tspg run`s (over 10 s)
def test_force_replaces_the_old_run_and_its_targets(inputs, tmp_path):
    _, paths = inputs
    out = tmp_path / "run"
    assert tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Lung", "--out", out,
                *FAST).returncode == 0
    (out / "notes.txt").write_text("mine")
    assert tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
                "--force", *FAST).returncode == 0
    assert not (out / "Lung").exists()  # the old run's target is gone
    assert (out / "Liver" / "metrics.json").exists()
    assert (out / "notes.txt").read_text() == "mine"  # files that are not the run's stay
    assert list(json.loads((out / "manifest.json").read_text())["targets"]) == ["Liver"]
    assert oct((out / "manifest.json").stat().st_mode & 0o777) != oct(0o600)


def test_reload_refuses_changed_labels(inputs, tmp_path):
    atlas, paths = inputs
    labels = tmp_path / "labels.tsv"
    labels.write_text(paths["labels"].read_text())
    out = tmp_path / "run"
    assert tspg("train-classifier", "--data", paths["data"], "--labels", labels, "--out", out,
                "--classifier-epochs", "2", "--quiet").returncode == 0
    swapped = atlas.labels.copy()
    swapped.iloc[:2] = swapped.iloc[:2].to_numpy()[::-1]
    labels.write_text("".join(f"{s}\t{c}\n" for s, c in swapped.items()))
    proc = tspg("train-generator", out, "--target", "Liver", "--epochs", "1", "--quiet")
    _one_line_error(proc, "labels.tsv", "SHA-256")
    assert not (out / "Liver").exists()


@pytest.mark.slow  # a whole `tspg run` (over 10 s)
def test_retraining_a_generator_removes_its_stale_outputs(inputs, tmp_path):
    _, paths = inputs
    out = tmp_path / "run"
    assert tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
                *FAST).returncode == 0
    assert (out / "Liver" / "perturbed.tsv").exists()
    assert tspg("train-generator", out, "--target", "Liver", "--quiet").returncode == 0
    assert (out / "Liver" / "generator.safetensors").exists()
    assert not (out / "Liver" / "perturbed.tsv").exists() and not (out / "Liver" / "metrics.json").exists()
    # train-generator keeps the run's generator settings (here --epochs 1) unless told otherwise
    hist = pd.read_csv(out / "Liver" / "history.tsv", sep="\t")
    assert hist["epoch"].tolist() == [0, 1]  # the prior alone, then the one epoch


def test_retraining_a_generator_takes_its_old_figures_out_of_evaluation_md(inputs, tmp_path):
    _, paths = inputs
    out = tmp_path / "run"
    fast = [a for a in FAST if a != "--no-evaluate"]
    assert tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--target", "Lung",
                "--out", out, *fast).returncode == 0
    text = (out / "evaluation.md").read_text()
    assert "## Liver" in text and "## Lung" in text
    assert tspg("train-generator", out, "--target", "Liver", "--quiet").returncode == 0
    text = (out / "evaluation.md").read_text()
    assert "## Liver" not in text and "## Lung" in text  # Lung's generator and figures are unchanged
    assert tspg("train-generator", out, "--target", "Lung", "--quiet").returncode == 0
    assert not (out / "evaluation.md").exists()  # no target has an evaluation any more


@pytest.mark.parametrize("bad", ["gmt", "heatmap"])
def test_bad_analysis_inputs_are_refused_before_training(inputs, tmp_path, bad):
    _, paths = inputs
    out = tmp_path / "run"
    (tmp_path / "empty.gmt").write_text("")
    extra = (["--enrich-gmt", tmp_path / "empty.gmt"] if bad == "gmt"
             else ["--heatmap-samples", "NOT_A_SAMPLE"])
    fast = [a for a in FAST if a != "--no-figures"]
    proc = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
                *fast, *extra)
    _one_line_error(proc, "no gene sets" if bad == "gmt" else "NOT_A_SAMPLE not among the perturbed samples")
    assert not out.exists()  # used to fail after training, leaving a classifier, a generator and perturbations
