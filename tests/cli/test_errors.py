"""Bad input on the command line: one line on stderr, exit code 2, no traceback, nothing left in --out.

Most cases run in-process through click's CliRunner (torch is imported once); a few run ``python -m tspg.cli``
in a subprocess to check the real exit code and stderr end to end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tspg.cli import app


def run_cli(args: list[str]):  # noqa: ANN201
    """Run ``tspg ARGS`` in-process; return click's Result (exit code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="tspg")


def read_atlas(atlas_files: dict[str, Path]) -> tuple[pd.DataFrame, pd.Series]:
    gem = pd.read_csv(atlas_files["data"], sep="\t", index_col=0)
    labels = pd.read_csv(atlas_files["labels"], sep="\t", header=None, index_col=0).iloc[:, 0]
    return gem, labels


def _write_gem(gem: pd.DataFrame, path: Path) -> Path:
    gem.to_csv(path, sep="\t", index_label="sample")
    return path


def _write_labels(labels: pd.Series, path: Path) -> Path:
    path.write_text("".join(f"{s}\t{c}\n" for s, c in labels.items()))
    return path


# Each case: (files in the atlas folder, a scratch folder) -> CLI arguments after "run" (without --out).
Case = Callable[[dict[str, Path], Path], list]


def _base(a: dict[str, Path], data: Path | None = None, labels: Path | None = None) -> list:
    return ["--data", data or a["data"], "--labels", labels or a["labels"], "--target", "Liver"]


def _unknown_extension(a, d):  # noqa: ANN001, ANN202
    shutil.copy(a["data"], d / "gem.xlsx")
    return _base(a, data=d / "gem.xlsx")


def _missing_file(a, d):  # noqa: ANN001, ANN202
    return _base(a, data=d / "missing.tsv")


def _no_shared_samples(a, d):  # noqa: ANN001, ANN202
    _, labels = read_atlas(a)
    return _base(a, labels=_write_labels(labels.rename(lambda s: "X" + s), d / "labels.tsv"))


def _some_shared(a, d):  # noqa: ANN001, ANN202
    _, labels = read_atlas(a)
    return _base(a, labels=_write_labels(labels.iloc[3:], d / "labels.tsv"))


def _duplicated_samples(a, d):  # noqa: ANN001, ANN202
    gem, _ = read_atlas(a)
    return _base(a, data=_write_gem(gem.rename(index={gem.index[1]: gem.index[0]}), d / "gem.tsv"))


def _duplicated_genes(a, d):  # noqa: ANN001, ANN202
    gem, _ = read_atlas(a)
    gem.columns = [*gem.columns[:-1], gem.columns[0]]
    return _base(a, data=_write_gem(gem, d / "gem.tsv"))


def _non_numeric(a, d):  # noqa: ANN001, ANN202
    gem, _ = read_atlas(a)
    gem = gem.astype(object)
    gem.iloc[4, 7] = "n/a?"
    return _base(a, data=_write_gem(gem, d / "gem.tsv"))


def _nan(a, d):  # noqa: ANN001, ANN202
    gem, _ = read_atlas(a)
    gem.iloc[2, 3] = np.nan
    return _base(a, data=_write_gem(gem, d / "gem.tsv"))


def _small_class(a, d):  # noqa: ANN001, ANN202
    _, labels = read_atlas(a)
    labels = labels.copy()
    labels.iloc[:2] = "Rare"
    return _base(a, labels=_write_labels(labels, d / "labels.tsv"))


def _unknown_target(a, d):  # noqa: ANN001, ANN202
    return ["--data", a["data"], "--labels", a["labels"], "--target", "Kidney"]


def _unknown_gene_set(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--gene-sets", a["gene_sets"], "--gene-set", "LIVER_UPP"]


def _gene_set_without_gmt(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--gene-set", "LIVER_UP"]


def _cls_count(a, d):  # noqa: ANN001, ANN202
    _, labels = read_atlas(a)
    cls = d / "labels.cls"
    names = sorted(set(labels))
    cls.write_text(f"23 {len(names)} 1\n# {' '.join(n.replace(' ', '_') for n in names)}\n"
                   + " ".join(["Liver"] * 23) + "\n")
    return _base(a, labels=cls)


def _labels_key_on_tsv(a, d):  # noqa: ANN001, ANN202
    return ["--data", a["data"], "--labels-key", "cell_type", "--target", "Liver"]


def _binary_gem(a, d):  # noqa: ANN001, ANN202
    (d / "gem.tsv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return _base(a, data=d / "gem.tsv")


def _layer_on_tsv(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--layer", "counts"]


def _test_size(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--test-size", "1.5"]


def _epochs(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--epochs", "0"]


def _bad_impute_choice(a, d):  # noqa: ANN001, ANN202
    return [*_base(a), "--impute", "average"]


def _no_target(a, d):  # noqa: ANN001, ANN202
    return ["--data", a["data"], "--labels", a["labels"]]


# id -> (case, words the one stderr line must contain)
CASES: dict[str, tuple[Case, list[str]]] = {
    "unknown-extension": (_unknown_extension, ["unknown GEM format '.xlsx'"]),
    "missing-file": (_missing_file, ["missing.tsv: no such file"]),
    "no-shared-samples": (_no_shared_samples, ["share no sample ids"]),
    "some-shared-samples": (_some_shared, ["3 of 24 GEM samples have no label", "--allow-missing-labels"]),
    "duplicated-samples": (_duplicated_samples, ["duplicated sample name", "S00001"]),
    "duplicated-genes": (_duplicated_genes, ["duplicated gene name", "SYN00001"]),
    "non-numeric": (_non_numeric, ["non-numeric value 'n/a?'", "sample 'S00005'", "gene 'SYN00008'"]),
    "nan": (_nan, ["1 missing or infinite value(s)", "sample 'S00003'", "gene 'SYN00004'", "--impute"]),
    "small-class": (_small_class, ["fewer than 3 samples", "'Rare' (2)"]),
    "unknown-target": (_unknown_target, ["Unknown target class 'Kidney'",
                                         "valid classes: Heart - Left Ventricle, Liver, Lung."]),
    "unknown-gene-set": (_unknown_gene_set, ["Unknown gene set 'LIVER_UPP'", "did you mean LIVER_UP"]),
    "gene-set-without-gene-sets": (_gene_set_without_gmt, ["--gene-set needs --gene-sets"]),
    "cls-count-mismatch": (_cls_count, ["23 labels for 24 GEM samples"]),
    "labels-key-on-tsv": (_labels_key_on_tsv, ["--labels-key", "needs an .h5ad GEM"]),
    "binary-gem": (_binary_gem, ["not a UTF-8 text file"]),
    "layer-on-tsv": (_layer_on_tsv, ["--layer and --use-raw apply to .h5ad files only"]),
    "test-size": (_test_size, ["--test-size must be between 0 and 1, not 1.5"]),
    "epochs": (_epochs, ["--epochs must be an integer >= 1, not 0."]),
    "classifier-epochs": (lambda a, d: [*_base(a), "--classifier-epochs", "0"],
                          ["--classifier-epochs must be an integer >= 1, not 0."]),
    "batch-size": (lambda a, d: [*_base(a), "--batch-size", "1"], ["--batch-size must be an integer >= 2, not 1."]),
    "kappa-nan": (lambda a, d: [*_base(a), "--kappa", "nan"], ["--kappa must be a finite number >= 0.0, not nan."]),
    "bad-impute-choice": (_bad_impute_choice, ["tspg run: error:", "'average' is not one of", "--impute"]),
    "missing-target": (_no_target, ["tspg run: error:", "Missing option '--target'"]),
}


# tiny training in case a bad input got through; before the case's own options, which win
FAST = ["--quiet", "--epochs", "1", "--classifier-epochs", "1", "--no-figures", "--no-evaluate"]


def _check_error(result, out: Path, words: list[str]) -> str:  # noqa: ANN001
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(("tspg: error: ", "tspg run: error: ")), line
    for word in words:
        assert word in line, (word, line)
    assert result.stdout == ""
    return line


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_no_output(case, atlas_files, tmp_path):
    make_args, words = CASES[case]
    scratch = tmp_path / "in"
    scratch.mkdir()
    out = tmp_path / "out"
    result = run_cli(["run", *FAST, *make_args(atlas_files, scratch), "--out", out])
    _check_error(result, out, words)
    assert not out.exists()


@pytest.mark.parametrize("case", ["unknown-target", "nan", "test-size", "unknown-gene-set"])
def test_existing_empty_out_stays_empty(case, atlas_files, tmp_path):
    make_args, words = CASES[case]
    scratch = tmp_path / "in"
    scratch.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(["run", *FAST, *make_args(atlas_files, scratch), "--out", out])
    _check_error(result, out, words)
    assert out.is_dir() and list(out.iterdir()) == []


def test_out_is_a_file(atlas_files, tmp_path):
    out = tmp_path / "out"
    out.write_text("keep me")
    result = run_cli(["run", *FAST, *_base(atlas_files), "--out", out])
    _check_error(result, out, ["tspg run: error:", "'--out'", "is a file"])
    assert out.read_text() == "keep me"


def test_out_below_a_file(atlas_files, tmp_path):
    (tmp_path / "afile").write_text("keep me")
    out = tmp_path / "afile" / "run"
    result = run_cli(["train-classifier", "--quiet", "--classifier-epochs", "1", "--data", atlas_files["data"],
                      "--labels", atlas_files["labels"], "--out", out])
    _check_error(result, out, ["afile"])
    assert (tmp_path / "afile").read_text() == "keep me"


def test_the_same_inputs_pass_with_allow_missing_labels_and_impute(atlas_files, tmp_path):
    """Control: the 'some-shared-samples' and 'nan' inputs together get through once the options allow them.

    ``train-classifier`` reads and validates the data exactly as ``run`` does, without training generators.
    """
    scratch = tmp_path / "in"
    scratch.mkdir()
    gem, labels = read_atlas(atlas_files)
    gem.iloc[5, 3] = np.nan
    data = _write_gem(gem, scratch / "gem.tsv")
    lab = _write_labels(labels.iloc[3:], scratch / "labels.tsv")
    out = tmp_path / "out"
    args = ["--quiet", "--classifier-epochs", "1", "--data", data, "--labels", lab, "--out", out]
    result = run_cli(["run", *args, "--target", "Liver", "--epochs", "1", "--impute", "mean"])
    _check_error(result, out, ["3 of 24 GEM samples have no label"])
    assert not out.exists()
    result = run_cli(["train-classifier", *args, "--impute", "mean", "--allow-missing-labels"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    assert f"outputs: {out}" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["allow_missing_labels"] is True and manifest["inputs"]["impute"] == "mean"
    split = manifest["split"]
    used = sorted(s for part in split.values() for s in part)
    assert used == sorted(labels.index[3:])  # exactly the labelled samples
    assert (out / "classifier.safetensors").is_file()


# ------------------------------------------------------------------------------------- real subprocesses
def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "tspg.cli", *map(str, args)]


def test_subprocess_errors(atlas_files, tmp_path):
    """End to end: the process exits 2 with one error line, no traceback and no --out (run concurrently)."""
    outs = {k: tmp_path / f"out-{k}" for k in ("target", "usage")}
    commands = {  # the input error after loading the data, without --quiet: INFO progress lines come first
        "target": _cli("run", *_unknown_target(atlas_files, tmp_path), "--out", outs["target"]),
        "usage": _cli("run", *_bad_impute_choice(atlas_files, tmp_path), "--out", outs["usage"]),
    }
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, c in commands.items()}
    results = {k: (*p.communicate(timeout=120), p.returncode) for k, p in procs.items()}
    expected = {
        "target": "tspg: error: Unknown target class 'Kidney'; valid classes: Heart - Left Ventricle, Liver, "
                  "Lung.",
        "usage": "tspg run: error: Invalid value for '--impute': 'average' is not one of 'none', 'zero', "
                 "'mean', 'median', 'drop-genes'. (see 'tspg run --help')",
    }
    for key, (stdout, stderr, code) in results.items():
        assert code == 2, (key, stderr)
        assert "Traceback" not in stderr, (key, stderr)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert [line for line in lines if "error" in line] == lines[-1:], (key, stderr)
        assert lines[-1] == expected[key], (key, lines[-1])
        assert stdout == ""
        assert not outs[key].exists()
    assert results["usage"][1].strip() == expected["usage"]  # usage errors come before any logging


@pytest.mark.parametrize("command", [[], ["run"], ["train-classifier"], ["train-generator"], ["perturb"],
                                     ["demo"]], ids=lambda c: c[0] if c else "tspg")
def test_help(command):
    proc = subprocess.run(_cli(*command, "--help"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith(f"Usage: tspg {' '.join(command)}".rstrip() + " ")
    if not command:
        for sub in ("run", "train-classifier", "train-generator", "perturb", "demo"):
            assert sub in proc.stdout
    if command == ["run"]:
        for option in ("--data", "--labels", "--target", "--out", "--gene-sets", "--impute", "--labels-key"):
            assert option in proc.stdout


@pytest.mark.parametrize("damage", ["truncated", "partial"])
@pytest.mark.parametrize("command", ["genes", "report", "enrich", "plot", "evaluate", "export", "perturb"])
def test_a_damaged_manifest_is_one_line_for_every_command(tmp_path, damage, command):
    run = tmp_path / "run"
    run.mkdir()
    text = '{"format": "tspg-run", "format_version": 2, "genes": ["G1"' if damage == "truncated" else \
        json.dumps({"format": "tspg-run", "format_version": 2, "seed": 0})
    (run / "manifest.json").write_text(text)
    extra = ["--enrich-gmt", str(tmp_path / "x.gmt")] if command == "enrich" else []
    (tmp_path / "x.gmt").write_text("S\tdesc\tG1\n")
    result = run_cli([command, str(run), *extra])
    line = _check_error(result, run, ["manifest.json"])
    assert ("not valid JSON" if damage == "truncated" else "lacks 'config'") in line
