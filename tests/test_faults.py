"""Damaged run folders and failing writes: one line naming the file and the fix, exit 2, nothing partial left."""

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tspg import TSPG
from tspg._io import atomic_write, atomic_write_text
from tspg.cli import app
from tspg.data import InputError

FAST = ["--quiet", "--epochs", "1", "--classifier-epochs", "1", "--no-figures", "--no-evaluate", "--seed", "1"]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="tspg")


def _one_line_exit_2(result, *words):
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def base_run(atlas_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "run"
    result = _cli("run", "--data", atlas_files["data"], "--labels", atlas_files["labels"], "--target", "Liver",
                  "--out", out, *FAST)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture
def run(base_run, tmp_path):
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "one-byte":
        path.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])  # same size and header, one value changed


def test_the_manifest_records_each_weights_digest(run):
    from tspg.data import file_sha256

    m = json.loads((run / "manifest.json").read_text())
    assert m["classifier_sha256"] == file_sha256(run / "classifier.safetensors")
    assert m["targets"]["Liver"]["sha256"] == file_sha256(run / "Liver" / "generator.safetensors")


@pytest.mark.parametrize("how", ["truncated", "random", "empty", "one-byte"])
@pytest.mark.parametrize("which", ["classifier.safetensors", "Liver/generator.safetensors"])
def test_damaged_weights_are_named_with_their_fix(run, which, how):
    _damage(run / which, how)
    with pytest.raises(InputError, match="damaged") as info:
        TSPG.load(run, device="cpu")
    assert which.split("/")[-1] in str(info.value)
    fix = "tspg train-generator" if which.startswith("Liver") else "tspg run"
    line = _one_line_exit_2(_cli("perturb", run, "--quiet", "--no-figures"), which.split("/")[-1], fix)
    assert "damaged" in line


def test_without_a_recorded_digest_the_file_is_still_checked(run):
    m = json.loads((run / "manifest.json").read_text())
    del m["targets"]["Liver"]["sha256"]  # a folder written before digests were recorded
    (run / "manifest.json").write_text(json.dumps(m))
    _damage(run / "Liver" / "generator.safetensors", "truncated")
    _one_line_exit_2(_cli("perturb", run, "--quiet", "--no-figures"), "not a readable safetensors file",
                     "tspg train-generator")


def test_weights_of_another_shape_are_refused(run, base_run):
    m = json.loads((run / "manifest.json").read_text())
    del m["targets"]["Liver"]["sha256"]
    m["genes"] = m["genes"][:-1]  # the manifest now describes a model of one gene fewer
    m["scaler"] = {k: v[:-1] if isinstance(v, list) else v for k, v in m["scaler"].items()}
    del m["classifier_sha256"]
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=r"does not match the manifest's model .* expected \(39"):
        TSPG.load(run, device="cpu")


def test_a_damaged_generator_is_fixed_by_retraining_it(run, atlas_files):
    _damage(run / "Liver" / "generator.safetensors", "random")
    result = _cli("train-generator", run, "--target", "Liver", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert TSPG.load(run, device="cpu").generators["Liver"] is not None


@pytest.mark.parametrize(("name", "how"), [("perturbations.tsv", "truncated"), ("perturbations.tsv", "random"),
                                          ("predictions.tsv", "empty"), ("metrics.json", "truncated")])
def test_damaged_tables_stop_the_analysis_with_one_line(run, name, how):
    _damage(run / "Liver" / name, how)
    _one_line_exit_2(_cli("genes", run, "--quiet"), name, "tspg perturb")


def test_a_write_that_fails_midway_leaves_nothing_partial(tmp_path):
    target = tmp_path / "table.tsv"
    atomic_write_text(target, "old content\n")

    def full_disk(p: Path) -> None:
        with open(p, "w") as fh:
            fh.write("half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"could not write .*table\.tsv: No space left on device") as info:
        atomic_write(target, full_disk)
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.tsv"]
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.tsv", full_disk)
    assert not (tmp_path / "new.tsv").exists() and len(list(tmp_path.iterdir())) == 1
