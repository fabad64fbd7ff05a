"""CLI options of speed: --device auto, --precision (recorded in the manifest), --stop-at-accuracy; fast --help."""

import json
import subprocess
import sys
from functools import partial

import pytest
from clihelp import tspg as _tspg

from tspg.data import make_atlas

tspg = partial(_tspg, check=False)
FAST = ["--classifier-epochs", "2", "--epochs", "3", "--quiet", "--no-figures"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=20, n_markers=4, seed=5)
    return atlas.write(tmp_path_factory.mktemp("inputs"))


@pytest.mark.slow  # a whole `tspg run` (over 10 s)
def test_precision_and_early_stop_are_recorded(inputs, tmp_path):
    out = tmp_path / "run"
    proc = tspg("run", "--data", inputs["data"], "--labels", inputs["labels"], "--target", "Liver", "--out", out,
                "--device", "auto", "--precision", "bf16", "--stop-at-accuracy", "0", *FAST)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["classifier"]["precision"] == "bf16"
    assert m["config"]["generator"]["precision"] == "bf16"
    assert m["config"]["generator"]["stop_accuracy"] == 0.0
    assert m["targets"]["Liver"]["config"]["precision"] == "bf16"
    assert m["targets"]["Liver"]["training"]["epochs_trained"] == 3  # --epochs is the maximum
    assert m["targets"]["Liver"]["training"]["precision"] == "bf16"  # what ran
    assert m["config"]["generator"]["patience"] == 10  # the default: early stopping
    proc = tspg("train-generator", out, "--target", "Lung", "--precision", "fp32", "--epochs", "1", "--patience",
                "7", "--quiet")
    assert proc.returncode == 0, proc.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["targets"]["Lung"]["config"]["precision"] == "fp32"
    assert m["targets"]["Lung"]["training"]["precision"] == "fp32"
    assert m["targets"]["Lung"]["config"]["patience"] == 7


@pytest.mark.parametrize(("option", "value"), [("--precision", "fp16"), ("--stop-at-accuracy", "1.5"),
                                                   ("--patience", "-1")])
def test_bad_speed_options_are_one_line_usage_errors(inputs, tmp_path, option, value):
    proc = tspg("run", "--data", inputs["data"], "--labels", inputs["labels"], "--target", "Liver", "--out",
                tmp_path / "x", option, value, *FAST)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert option in proc.stderr


def test_help_does_not_import_torch():
    code = "import sys, tspg.cli; print('torch' in sys.modules, 'pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "False"], proc.stdout + proc.stderr
