"""Side by side: tspg's generator step against the original TensorFlow scripts (ctargon/TSPG), same files, same run.

One command:  python benchmarks/vs_original.py --reference PATH [--python PY] [--epochs N] [--quick] [--out PATH]

``--reference`` is a checkout of github.com/ctargon/TSPG that you provide (nothing is downloaded); ``--python``
an interpreter that can run it (TensorFlow 2, tensorflow-probability and, with TensorFlow 2.16 or newer, tf-keras:
the scripts are run with ``TF_USE_LEGACY_KERAS=1``). Without ``--reference`` the benchmark says so and stops.

It generates W2 of ``speed.py`` (2,000 samples x 4,386 genes x 10 classes), writes it as the original's inputs
(tab-separated matrix, labels file, one gene set of every gene), runs the original ``bin/train-target.py`` and then
``bin/train-advgan.py`` unchanged with ``--target-cov diagonal`` and ``full`` (batch 128, test part 0.2, so 1,600
training samples and 13 steps an epoch), and reads Keras' own ms/step of every epoch after the first. In the same
run it times tspg's training step on the same scaled matrix and batch size (``speed.step_ms``: the D and G
updates and the target draws, on a fixed classifier), diagonal and full, in fp32 and, where the CPU has native
bf16, bf16. Reports the step and 13-step epoch of each, their ratio, the measured matrix-product peak, the
arithmetic of each step counted from the layer shapes and its share of the measured and the theoretical peak, and
the CPU model and flags. Writes ``benchmarks/results/vs_original.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import speed  # noqa: E402  (tspg's own speed benchmark: machine facts, peak, workloads, the step timer)
import torch  # noqa: E402

from tspg._io import atomic_write_text  # noqa: E402
from tspg.train import cpu_has_native_bf16  # noqa: E402

STEP_RE = re.compile(r"(\d+)/(\d+)\s.*?\s(\d+(?:\.\d+)?)(us|ms|s)/step")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}
BATCH = 128
W2 = (10, 4386, 2000)  # classes, genes, samples: speed.py's W2
ORIGINAL_CLASSIFIER = (512, 256, 128)  # bin/target_model.py; tspg uses the paper's 1024-512-128


def keras_step_ms(stdout: str) -> list[float]:
    """Keras' ms/step of each finished epoch in a ``fit`` log (the line whose step count is complete)."""
    out = []
    for line in ANSI_RE.sub("", stdout).replace("\r", "\n").splitlines():
        m = STEP_RE.search(line)
        if m and m.group(1) == m.group(2):
            out.append(float(m.group(3)) * UNIT[m.group(4)])
    return out


def run_original(python: str, script: Path, args: list[str], cwd: Path, timeout: float) -> tuple[list[float], float,
                                                                                              str]:
    """Run one of the original scripts unchanged; return Keras' ms/step per epoch, the wall seconds and a note.

    A script that trained but failed afterwards (the original's full-covariance run trains on NaN losses, its
    Cholesky factor of a singular covariance, and then fails to plot them) still gives its epochs' times; the note
    says what went wrong. One that printed no finished epoch raises RuntimeError.
    """
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    steps = keras_step_ms(proc.stdout)
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    tail = lines[-1] if lines else "no output"  # a traceback's last line says what failed
    if not steps:
        raise RuntimeError(f"{script.name} gave no finished epoch (rc {proc.returncode}): {tail}")
    notes = []
    if re.search(r"loss_g: nan", proc.stdout):
        notes.append("its losses were NaN")
    if proc.returncode != 0:
        notes.append(f"it then exited with {proc.returncode}: {tail[-200:]}")
    return steps, wall, "; ".join(notes)


def write_inputs(folder: Path, shape: tuple[int, int, int]) -> tuple[Path, Path, Path, object]:
    """A speed.py atlas (classes, genes, samples) as the original's inputs: samples x genes .txt (tab), labels
    (sample, class), one gene set of all genes."""
    a = speed.atlas(*shape)
    data, labels, sets = folder / "w2.txt", folder / "w2.labels.txt", folder / "w2.sets.txt"
    a.gem.to_csv(data, sep="\t", float_format="%.6f")
    a.labels.to_csv(labels, sep="\t", header=False)
    sets.write_text("all_genes\t" + "\t".join(map(str, a.gem.columns)) + "\n")
    return data, labels, sets, a


def theoretical_gflops(fma_units: int) -> tuple[float | None, str]:
    """cores x FMA units x fp32 lanes x 2 x base clock, from /proc/cpuinfo; None where the clock is not listed.

    AMD's family 25 (Zen 3 and Zen 4) executes AVX-512 on 256-bit units, so its lanes are 8 with AVX-512 too.
    """
    info = speed.machine()
    flags = set(info["flags"].split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "fma" in flags else 4
    fields = speed.cpu_fields()
    try:
        mhz = float(fields["cpu MHz"])
    except (KeyError, ValueError):
        mhz = None
    if fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family", "").isdigit() \
            and int(fields["cpu family"]) < 26:
        lanes = min(lanes, 8)
    if mhz is None:
        return None, "clock not listed in /proc/cpuinfo"
    cores = os.cpu_count() or 1
    g = cores * fma_units * lanes * 2 * mhz / 1e3
    return g, f"{cores} cores x {fma_units} FMA units x {lanes} fp32 lanes x 2 x {mhz / 1e3:.2f} GHz"


#: OpenMP waits tspg's step is timed under, by name: the ``tspg`` command's default (idle threads sleep), a short
#: spin before they sleep (libgomp's ``GOMP_SPINCOUNT``, which takes precedence over the policy), and spinning
#: threads; OpenMP reads them when it loads, so each needs its own process.
WAIT_POLICIES: dict[str, dict[str, str]] = {
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "PASSIVE, GOMP_SPINCOUNT=10000": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"},
    "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
}
ROUNDS = 2  # child processes per wait policy, alternated, so that drifting load hits every policy alike


def wait_env(policy: str) -> dict[str, str]:
    """This process's environment with the OpenMP waits of ``policy`` (a name of :data:`WAIT_POLICIES`) only."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return {**env, **WAIT_POLICIES[policy]}


def child_steps(shape: tuple[int, int, int], steps: int) -> dict:
    """In a child process: tspg's step times on the workload ``shape`` (``speed.step_ms``), by configuration."""
    a = speed.atlas(*shape)
    x, y = speed.scaled(a)
    configs = [("diagonal", "fp32"), ("full", "fp32")]
    if cpu_has_native_bf16():
        configs += [("diagonal", "bf16"), ("full", "bf16")]
    return {f"{c[0]} {c[1]}": ms for c, ms in speed.step_ms(x, y, configs, steps, shape[0]).items()}


#: generator epochs of each in-run timing: the first one's steps are not timed (the original's first is not either)
RUN_EPOCHS = 6


def child_run_steps(shape: tuple[int, int, int]) -> dict:
    """In a child process: tspg's training iteration as ``tspg run`` takes it, by precision, and its step alone.

    f is trained with the defaults on the workload, then a generator with the defaults (its transport prior, the
    energy term) for :data:`RUN_EPOCHS` epochs, all of them run (``patience`` 0), for the same target as the
    original's. This is the state the original's Keras ms/step is read in: a trained classifier, during
    training, where f already calls most perturbed samples the target, so that ``L_adv``'s hinge sends no gradient
    back through f for most rows. ``ms``: the time from the end of one ``AdversarialPlan.step`` to the end of the
    next, so everything the loop does per mini-batch (the rows' gather, their cross-fitted prior moves and random
    shares, the step), as Keras' ms/step covers its whole ``train_step``; like Keras' figure, the mean over an
    epoch's steps but the first (here the validation runs before it), and then, like the original's figure in this
    benchmark, the median over the epochs after the first. ``step_ms``: the same of ``AdversarialPlan.step`` alone.
    ``active``: the mean share of rows whose hinge is active.
    """
    from tspg import TSPG
    from tspg.data import Dataset
    from tspg.train import ClassifierConfig, GeneratorConfig, _adversarial, _losses

    a = speed.atlas(*shape)
    ds = Dataset(a.gem, a.labels)
    target = str(sorted(a.labels.unique())[0])
    model = TSPG(ClassifierConfig(), seed=0, device="cpu", progress=False)
    model.fit_classifier(ds)
    times: list[float] = []
    ends: list[float] = []
    active: list[float] = []
    step, loss = _adversarial.AdversarialPlan.step, _adversarial.adversarial_loss

    def timed(plan, *a, **k):
        t0 = time.perf_counter()
        out = step(plan, *a, **k)
        ends.append(time.perf_counter())
        times.append(ends[-1] - t0)
        return out

    def counted(logits, target, kappa=0.0):
        active.append(float((_losses.target_margins(logits.detach(), target) < kappa).float().mean()))
        return loss(logits, target, kappa)

    precisions = ["fp32"] + (["bf16"] if cpu_has_native_bf16() else [])
    out = {}
    _adversarial.AdversarialPlan.step, _adversarial.adversarial_loss = timed, counted
    try:
        for prec in precisions:
            times.clear()
            ends.clear()
            active.clear()
            model.generator_config = GeneratorConfig(epochs=RUN_EPOCHS, patience=0, precision=prec)
            model.fit_generator(ds, target)
            per_epoch = len(times) // RUN_EPOCHS
            # as Keras' ms/step: per epoch, the mean over its steps but the first (here: the validation runs before
            # it); then the median over the epochs after the first
            epochs = [range(e * per_epoch + 1, (e + 1) * per_epoch) for e in range(1, RUN_EPOCHS)]
            iters = [np.mean([ends[i] - ends[i - 1] for i in rows]) for rows in epochs]
            alone = [np.mean([times[i] for i in rows]) for rows in epochs]
            out[prec] = {"ms": float(np.median(iters)) * 1e3, "step_ms": float(np.median(alone)) * 1e3,
                         "active": float(np.mean(active)), "steps": sum(len(rows) for rows in epochs)}
    finally:
        _adversarial.AdversarialPlan.step, _adversarial.adversarial_loss = step, loss
    return out


def tspg_run_steps(shape: tuple[int, int, int]) -> dict[tuple[str, str], dict]:
    """tspg's in-run step (:func:`child_run_steps`) per (precision, wait policy), in fresh processes, alternated."""
    out: dict[tuple[str, str], list[dict]] = {}
    for _ in range(ROUNDS):
        for policy in WAIT_POLICIES:
            code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import vs_original; "
                    "print(json.dumps(vs_original.child_run_steps(tuple(json.loads(sys.argv[2])))))")
            proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent),
                                   json.dumps(list(shape))],
                                  env=wait_env(policy), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"tspg in-run step timing ({policy}) failed: {proc.stderr[-1500:]}")
            for prec, r in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                out.setdefault((prec, policy), []).append(r)
    return {k: {"ms": _median([r["ms"] for r in v]), "step_ms": _median([r["step_ms"] for r in v]),
                "active": float(np.mean([r["active"] for r in v])), "steps": sum(r["steps"] for r in v)}
            for k, v in out.items()}


def tspg_steps(shape: tuple[int, int, int], steps: int) -> dict[tuple[str, str, str], float]:
    """tspg's step (ms) per (covariance, precision, wait policy): each policy in fresh processes, alternated.

    OpenMP reads ``OMP_WAIT_POLICY`` once, when it loads, so every policy runs in its own child process; each of
    :data:`ROUNDS` rounds times ``steps / ROUNDS`` steps per configuration, and the median is over the rounds'
    medians.
    """
    out: dict[tuple[str, str, str], list[float]] = {}
    per_round = max(3, steps // ROUNDS)
    for _ in range(ROUNDS):
        for policy in WAIT_POLICIES:
            code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import vs_original; "
                    "print(json.dumps(vs_original.child_steps(tuple(json.loads(sys.argv[2])), int(sys.argv[3]))))")
            proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent),
                                   json.dumps(list(shape)), str(per_round)],
                                  env=wait_env(policy), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"tspg step timing ({policy}) failed: {proc.stderr[-1500:]}")
            for key, ms in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                cov, prec = key.split()
                out.setdefault((cov, prec, policy), []).append(ms)
    return {k: _median(v) for k, v in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, default=None, help="a checkout of github.com/ctargon/TSPG")
    p.add_argument("--python", default=sys.executable, help="interpreter with TensorFlow for the original scripts")
    p.add_argument("--epochs", type=int, default=6, help="generator epochs of the original per covariance (the "
                   "first is not timed; default 6)")
    p.add_argument("--steps", type=int, default=30, help="timed tspg steps per setting (default 30)")
    p.add_argument("--fma-units", type=int, default=2, help="FMA units per core for the theoretical peak "
                   "(default 2)")
    p.add_argument("--quick", action="store_true", help="a 400 x 300 x 4 workload and 3 epochs (a smoke test), to "
                   "vs_original_quick.md")
    p.add_argument("--out", type=Path, default=None, help="results file (default "
                   "benchmarks/results/vs_original.md, or vs_original_quick.md with --quick)")
    args = p.parse_args()
    args.shape = (4, 300, 400) if args.quick else W2
    if args.quick:
        args.epochs, args.steps = min(args.epochs, 3), min(args.steps, 10)
    args.out = args.out or speed.RESULTS / ("vs_original_quick.md" if args.quick else "vs_original.md")
    if args.reference is None:
        speed.log("vs_original: skipped, no --reference given: point it at a checkout of github.com/ctargon/TSPG "
                  "(and --python at an interpreter with TensorFlow) to compare")
        return 0
    bin_dir = args.reference / "bin"
    if not (bin_dir / "train-advgan.py").is_file() or not (bin_dir / "train-target.py").is_file():
        print(f"error: {args.reference} is not a TSPG checkout (no bin/train-advgan.py): give --reference the "
              "folder of a clone of github.com/ctargon/TSPG", file=sys.stderr)
        return 2
    if args.epochs < 2:
        print("error: --epochs must be at least 2 (the first epoch is not timed)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    info = speed.machine()
    speed.log(f"machine: {info['cpu']}; {info['flags']}; load {info['load_before']}")
    peak, peak_n = speed.matmul_peak(torch.float32, False)
    theory, theory_text = theoretical_gflops(args.fma_units)
    speed.log(f"measured fp32 peak {peak:.0f} GFLOP/s (n={peak_n}); theoretical {theory_text}")
    tmp = Path(tempfile.mkdtemp(prefix="tspg-vs-original-"))
    orig: dict[str, dict] = {}
    try:
        data, labels, sets, a = write_inputs(tmp, args.shape)
        common = ["--dataset", str(data), "--labels", str(labels), "--gene-sets", str(sets), "--set", "all_genes",
                  "--output-dir", str(tmp / "out")]
        clf_steps, clf_wall, _ = run_original(args.python, bin_dir / "train-target.py", [*common, "--epochs", "3"],
                                           tmp, 1800)
        orig["classifier"] = {"steps": clf_steps, "wall": clf_wall}
        speed.log(f"original classifier: {clf_steps} ms/step (batch 32), {clf_wall:.0f} s")
        target = str(sorted(a.labels.unique())[0])
        for cov in ("diagonal", "full"):
            try:
                steps, wall, note = run_original(args.python, bin_dir / "train-advgan.py",
                                           [*common, "--target", target, "--target-cov", cov, "--epochs",
                                            str(args.epochs), "--batch-size", str(BATCH)], tmp, 3600)
                orig[cov] = {"steps": steps, "wall": wall, "note": note}
                speed.log(f"original generator, {cov}: ms/step per epoch {steps}, {wall:.0f} s"
                          + (f" ({note})" if note else ""))
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                orig[cov] = {"error": str(err)[:400]}
                speed.log(f"original generator, {cov}: {err}")
        ours = tspg_steps(args.shape, args.steps)
        for c, ms in ours.items():
            speed.log(f"tspg step {c[0]} {c[1]}, {c[2]}: {ms:.1f} ms")
        in_run = tspg_run_steps(args.shape)
        for c, r in in_run.items():
            speed.log(f"tspg iteration in a run, {c[0]}, {c[1]}: {r['ms']:.1f} ms (step alone {r['step_ms']:.1f}) "
                      f"(active hinge rows {100 * r['active']:.1f}%)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_report(args, info, peak, peak_n, theory, theory_text, orig, ours, in_run, time.perf_counter() - t_start)
    speed.log(f"wrote {args.out}")
    return 0


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def write_report(args, info, peak, peak_n, theory, theory_text, orig, ours, in_run, total_s) -> None:
    n_classes, n_genes, n_samples = args.shape
    n_train = n_samples - int(np.ceil(0.2 * n_samples))  # the original's train_test_split, test_size 0.2
    flops_ours = speed.generator_step_flops(n_genes, n_classes, BATCH) / 1e9
    flops_orig = speed.generator_step_flops(n_genes, n_classes, BATCH, ORIGINAL_CLASSIFIER) / 1e9
    steps_per_epoch = -(-n_train // BATCH)

    def share(gflop: float, ms: float) -> str:
        rate = gflop / (ms / 1e3)
        t = f", {100 * rate / theory:.0f}% of theoretical" if theory else ""
        return f"{rate:.0f} GFLOP/s ({100 * rate / peak:.0f}% of measured peak{t})"

    L = ["# tspg against the original TSPG code: generator step, same machine, same run"
         + (" (QUICK mode: a small workload, not the figures)" if args.quick else ""), "",
         f"Written by `python benchmarks/vs_original.py --reference PATH --python PY --epochs {args.epochs}"
         f"{' --quick' if args.quick else ''}` on "
         f"{info['date']} in {total_s / 60:.1f} min. The original: `{args.reference.name}` run unchanged "
         "(`bin/train-target.py`, 3 epochs; `bin/train-advgan.py`, batch 128) with TF_USE_LEGACY_KERAS=1.", "",
         f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
         f"- Flags: {info['flags']}; native bf16: {'yes' if info['native_bf16'] else 'no'}; tspg's fp32 products: "
         + ("oneDNN's kernels (exact fp32 here)" if info["onednn_fp32"] else "torch's default kernels"),
         f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}",
         f"- Measured fp32 matrix-product peak (torch, square products): {peak:.0f} GFLOP/s (n={peak_n}); "
         f"theoretical: {f'{theory:.0f} GFLOP/s' if theory else 'n/a'} ({theory_text}"
         f"{'; below the measured peak: the cores run above the listed clock' if theory and theory < peak else ''})",
         f"- Load average before / after: {info['load_before']} / "
         f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", "",
         f"{'W2 of `speed.py`: ' if args.shape == W2 else ''}{n_samples:,} samples x {n_genes:,} genes x "
         f"{n_classes} classes; the original trains on {n_train:,} (its test part 0.2), {steps_per_epoch} steps of "
         f"128 an epoch. Original: the median of Keras' ms/step over epochs 2 to "
         f"{args.epochs} (epoch 1 builds the graph). tspg: the median over {ROUNDS} processes per wait policy of "
         f"the median of {max(3, args.steps // ROUNDS)} timed steps each of its training step (D then G update, "
         "target draws) on the same scaled matrix, batch 128, a fixed classifier. "
         f"Arithmetic counted from the layer shapes: tspg {flops_ours:.2f} GFLOP a step (the paper's classifier "
         f"1024-512-128), the original {flops_orig:.2f} (its 512-256-128). Ratio: tspg / original (below 1: tspg is "
         "faster).", "",
         "tspg's step is timed in fresh processes under three OpenMP waits: `PASSIVE`, the `tspg` command's "
         "default (idle threads sleep between parallel regions; robust where other work shares the cores); "
         "`PASSIVE, GOMP_SPINCOUNT=10000` (libgomp's threads spin a short while before they sleep; for a machine "
         "whose cores are the run's alone: a busy process beside it makes the step two to three times slower, "
         "`docs/method.md`); and `ACTIVE` (threads spin throughout, which also slows the run's numpy phases). "
         "The original's TensorFlow thread pool spins.", "",
         "| covariance | tspg OpenMP waits | original ms/step | original s/epoch | tspg fp32 ms/step | ratio fp32 | "
         "tspg bf16 ms/step | ratio bf16 | original GFLOP/s | tspg fp32 GFLOP/s |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for cov in ("diagonal", "full"):
        o = orig.get(cov, {})
        for policy in WAIT_POLICIES:
            f32, b16 = ours.get((cov, "fp32", policy)), ours.get((cov, "bf16", policy))
            if "steps" in o and len(o["steps"]) > 1:
                om = _median(o["steps"][1:])
                L.append(f"| {cov} | {policy} | {om:.1f} | {om * steps_per_epoch / 1e3:.2f} | {f32:.1f} | "
                         f"{f32 / om:.2f}x | " + (f"{b16:.1f} | {b16 / om:.2f}x" if b16 else "- | -")
                         + f" | {share(flops_orig, om)} | {share(flops_ours, f32)} |")
            else:
                why = o.get("error", "no timed epoch").replace("|", "/")
                L.append(f"| {cov} | {policy} | failed: {why} | - | {f32:.1f} | - | " + (f"{b16:.1f}" if b16 else "-")
                         + f" | - | - | {share(flops_ours, f32)} |")
    od = orig.get("diagonal", {})
    om = _median(od["steps"][1:]) if "steps" in od and len(od["steps"]) > 1 else None
    L += ["", "**tspg's training iteration in a run.** The rows above time tspg's step on a fixed, untrained "
          "classifier, whose hinge (`L_adv`) is active for every row. The original's ms/step is read during its real "
          "training, with its trained classifier, and covers its whole `train_step`. The same state for tspg: f "
          "trained with the defaults on the same matrix, then `fit_generator` with the defaults (the transport "
          f"prior, the energy term; `patience` 0) for {RUN_EPOCHS} epochs. Its ms/step is the time from the end of "
          "one step to the end of the next: everything the loop does per mini-batch, the rows' gather, their "
          "cross-fitted prior moves and random shares, and the step (D then G update); as Keras' figure, the mean "
          "over an epoch's steps but the first (which follows the validation), and, as the original's column, the "
          "median over the epochs after the first. "
          "The step alone is given beside it. There f calls most perturbed samples the target with a margin of "
          "`kappa` or more (the column of rows whose `L_adv` hinge is still active). The step here also computes "
          "what the rows above leave out, `L_ind` over f's calls of the batch. The default target term draws no "
          "Gaussian, so the covariance model does not enter; the ratio is against the original's diagonal step.",
          "",
          "| tspg OpenMP waits | original diagonal ms/step | tspg fp32 ms/step | ratio fp32 | tspg bf16 ms/step | "
          "ratio bf16 | step alone fp32 / bf16 ms | rows with an active hinge | timed iterations |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for policy in WAIT_POLICIES:
        f32, b16 = in_run.get(("fp32", policy)), in_run.get(("bf16", policy))
        if f32 is None:
            continue

        def cell(r):
            if r is None:
                return "- | -"
            return f"{r['ms']:.1f} | " + (f"{r['ms'] / om:.2f}x" if om else "-")

        act = ", ".join(f"{p} {100 * r['active']:.1f}%" for p, r in (("fp32", f32), ("bf16", b16)) if r)
        steps = ", ".join(f"{p} {r['steps']}" for p, r in (("fp32", f32), ("bf16", b16)) if r)
        alone = " / ".join(f"{r['step_ms']:.1f}" if r else "-" for r in (f32, b16))
        L.append(f"| {policy} | {f'{om:.1f}' if om else '-'} | {cell(f32)} | {cell(b16)} | {alone} | {act} | "
                 f"{steps} |")
    c = orig.get("classifier", {})
    if c.get("steps"):
        L += ["", f"Original classifier (512-256-128, batch 32): {_median(c['steps'][1:] or c['steps']):.1f} ms a "
              f"step (Keras, epochs 2-3); the whole `train-target.py` took {c['wall']:.0f} s."]
    L += ["", "Per-epoch ms/step of the original, as Keras printed them: "
          + "; ".join(f"{cov} {o['steps']}" for cov, o in orig.items() if "steps" in o) + "."]
    L += [f"The original's {cov} run: {o['note']}." for cov, o in orig.items() if o.get("note")]
    atomic_write_text(args.out, "\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
