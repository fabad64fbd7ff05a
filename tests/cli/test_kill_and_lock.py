"""Killed processes and concurrent writers: SIGKILL at several points, then --resume; one writer per run folder."""

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from clihelp import tspg as _tspg

from tspg._names import CLASSIFIER_WEIGHTS, GENERATOR_WEIGHTS, HISTORY, LOCK, MANIFEST, METRICS, PERTURBATIONS
from tspg.data import make_atlas
from tspg.model import target_dirname

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and file locks")

tspg = partial(_tspg, check=False)
TARGETS = ["Liver", "Lung"]
# long enough that a generator's training is seen and killed (a few seconds each), short for a test
SETTINGS = ["--classifier-epochs", "3", "--epochs", "15", "--quiet", "--no-figures", "--no-evaluate", "--seed", "3"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=30, n_markers=4, seed=6)
    return atlas.write(tmp_path_factory.mktemp("inputs"))


def _run_args(inputs, out):
    args = ["run", "--data", inputs["data"], "--labels", inputs["labels"], "--out", out, *SETTINGS]
    return args + [a for t in TARGETS for a in ("--target", t)]


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tspg.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before the point to kill it at: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the point to kill at")
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def _manifest_targets(out: Path) -> set[str]:
    return set(json.loads((out / MANIFEST).read_text())["targets"])


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = tspg(*_run_args(inputs, out))
    assert proc.returncode == 0, proc.stderr
    return out


def _same_outputs(out: Path, reference: Path) -> None:
    for t in TARGETS:
        for name in (GENERATOR_WEIGHTS, PERTURBATIONS):
            a, b = out / target_dirname(t) / name, reference / target_dirname(t) / name
            assert a.read_bytes() == b.read_bytes(), f"{t}/{name} differs from the uninterrupted run's"


@pytest.mark.slow
def test_killed_during_a_generator_then_resume_finishes_like_an_uninterrupted_run(inputs, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _start(*_run_args(inputs, out))
    _wait_for(lambda: (out / MANIFEST).exists(), proc)  # the classifier is saved: now in the first generator
    _kill(proc)
    assert _manifest_targets(out) == set()
    again = tspg(*_run_args(inputs, out))  # the same command: refused in one line that names --resume
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    done = tspg(*_run_args(inputs, out), "--resume")
    assert done.returncode == 0, done.stderr
    assert _manifest_targets(out) == set(TARGETS)
    _same_outputs(out, uninterrupted)


@pytest.mark.slow
def test_killed_after_one_target_then_resume_keeps_it_and_finishes(inputs, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _start(*_run_args(inputs, out))
    first = out / target_dirname(TARGETS[0])
    _wait_for(lambda: (first / GENERATOR_WEIGHTS).exists(), proc)  # while the first target's outputs are written
    _kill(proc)
    # history.tsv is written only when a generator is trained
    kept = (first / HISTORY).stat().st_mtime_ns if TARGETS[0] in _manifest_targets(out) else None
    done = tspg(*_run_args(inputs, out), "--resume")
    assert done.returncode == 0, done.stderr
    if kept is not None:  # a generator in the manifest is kept, not trained again
        assert (first / HISTORY).stat().st_mtime_ns == kept
    assert all((out / target_dirname(t) / METRICS).is_file() for t in TARGETS)
    _same_outputs(out, uninterrupted)


def test_killed_during_the_classifier_leaves_no_run_and_the_same_command_starts_again(inputs, tmp_path):
    out = tmp_path / "run"
    proc = _start(*_run_args(inputs, out), "--epochs", "1")
    _wait_for(lambda: (out / LOCK).exists() and (out / LOCK).stat().st_size > 0, proc)  # the run holds its folder
    _kill(proc)
    assert not (out / MANIFEST).exists()  # nothing claims to be a run
    proc = tspg(*_run_args(inputs, out), "--epochs", "1")  # the lock left by the killed process is taken over
    assert proc.returncode == 0, proc.stderr
    assert (out / CLASSIFIER_WEIGHTS).exists() and _manifest_targets(out) == set(TARGETS)


def test_a_second_writer_is_refused_in_one_line_and_both_targets_end_in_the_manifest(inputs, tmp_path):
    out = tmp_path / "run"
    first = tspg("train-classifier", "--data", inputs["data"], "--labels", inputs["labels"], "--out", out,
                 "--classifier-epochs", "2", "--quiet")
    assert first.returncode == 0, first.stderr
    proc = _start("train-generator", out, "--target", TARGETS[0], "--epochs", "25", "--quiet")
    _wait_for(lambda: (out / LOCK).stat().st_size > 0, proc)
    second = tspg("train-generator", out, "--target", TARGETS[1], "--epochs", "1", "--quiet")
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert "is being written by another tspg process" in lines[0] and "train-generator" in lines[0], lines[0]
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert (out / LOCK).stat().st_size == 0  # released cleanly
    again = tspg("train-generator", out, "--target", TARGETS[1], "--epochs", "1", "--quiet")
    assert again.returncode == 0, again.stderr
    assert _manifest_targets(out) == set(TARGETS)  # neither writer lost the other's target


def test_resume_refuses_other_settings_and_resume_with_force(inputs, tmp_path):
    out = tmp_path / "run"
    base = ["run", "--data", inputs["data"], "--labels", inputs["labels"], "--out", out, "--target", "Liver",
            "--classifier-epochs", "2", "--epochs", "1", "--quiet", "--no-figures", "--no-evaluate"]
    assert tspg(*base).returncode == 0
    other = tspg(*base, "--seed", "9", "--resume")
    assert other.returncode == 2 and "--seed differ" in other.stderr and "Traceback" not in other.stderr
    both = tspg(*base, "--resume", "--force")
    assert both.returncode == 2 and "pass one of them" in both.stderr
    same = tspg(*base, "--resume")  # a complete run: nothing to train, outputs rewritten from it
    assert same.returncode == 0, same.stderr
