"""benchmarks/vs_original.py: its Keras log parser, the skip without a checkout, and the bad-checkout line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_original.py"


def _module():
    spec = importlib.util.spec_from_file_location("vs_original", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_keras_progress_lines_give_the_ms_per_step_of_finished_epochs():
    mod = _module()
    log = ("Epoch 1/3\n 5/13 [=====>....] - ETA: 3s - loss_d: 0.3\r"
           "13/13 [==============================] - 4s 118ms/step - loss_d: 0.25 - loss_g: 9.1\n"
           "Epoch 2/3\n13/13 [==============================] - 1s 47ms/step - loss_d: 0.24\n"
           "Epoch 3/3\n\x1b[1m13/13\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m1s\x1b[0m 1s/step"
           " - loss: 1.0\n"
           "50/50 ━━━━━━━━━━━━━━━━━━━━ 0s 950us/step - accuracy: 0.9\n")
    assert mod.keras_step_ms(log) == pytest.approx([118.0, 47.0, 1000.0, 0.95])


def test_without_a_checkout_it_says_so_and_writes_nothing(tmp_path):
    out = tmp_path / "vs.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "skipped, no --reference given" in proc.stdout
    assert not out.exists()


def test_a_folder_that_is_not_a_checkout_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "vs.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--reference", str(tmp_path), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not a TSPG checkout" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_tspg_step_is_timed_in_a_fresh_process_per_wait_policy(monkeypatch):
    mod = _module()
    monkeypatch.setattr(mod, "ROUNDS", 1)
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")  # the user's own spin count must not leak into the other settings
    seen = []
    run = subprocess.run

    def spy(cmd, *a, **kw):
        seen.append((kw["env"]["OMP_WAIT_POLICY"], kw["env"].get("GOMP_SPINCOUNT")))
        return run(cmd, *a, **kw)

    monkeypatch.setattr(mod.subprocess, "run", spy)
    got = mod.tspg_steps((3, 40, 60), 3)
    assert seen == [("PASSIVE", None), ("PASSIVE", "10000"), ("ACTIVE", None)]
    assert {k[2] for k in got} == set(mod.WAIT_POLICIES)
    assert {(k[0], k[1]) for k in got} >= {("diagonal", "fp32"), ("full", "fp32")}
    assert all(v > 0 for v in got.values())


def test_the_in_run_figure_is_the_whole_iteration_with_the_step_alone_beside_it(monkeypatch):
    # Keras' ms/step covers the original's whole train_step: tspg's figure covers everything its loop does per
    # mini-batch (the rows' gather and prior moves as well as the step), not the step alone
    mod = _module()
    from tspg.train import _prior

    moved = []
    move = _prior.RowMoves.move

    def spy(self, *a, **kw):
        moved.append(1)
        return move(self, *a, **kw)

    monkeypatch.setattr(_prior.RowMoves, "move", spy)
    got = mod.child_run_steps((3, 40, 300))
    assert set(got) >= {"fp32"}
    for r in got.values():
        assert r["ms"] > r["step_ms"] > 0  # each iteration holds its step and the batch's gather and moves
        per_epoch = len(moved) // (mod.RUN_EPOCHS * len(got))  # the prior moves each batch of each epoch
        assert per_epoch >= 2 and r["steps"] == (mod.RUN_EPOCHS - 1) * (per_epoch - 1)
