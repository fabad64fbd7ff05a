"""Sweeps: one run folder per gene set (``tspg sweep``), run by a local pool or by Snakemake, then one table.

A sweep folder ``DIR`` holds ``sweep.json`` (the plan: gene sets, targets, the ``tspg run`` options shared by
every gene set, threads per job), one run folder per gene set (``DIR/<gene set>/``, the usual contract) and,
when a gene set is finished, ``DIR/<gene set>/sweep_rows.tsv`` (its rows of the summary, written last: the
mark that it is finished), ``DIR/logs/<gene set>.log``, and at the end ``DIR/summary.tsv`` and ``DIR/sweep.html``.

Both engines run the same unit, ``tspg sweep-job DIR --dir <gene set>`` (:func:`run_gene_set`), with the same
threads, so they write the same values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from tspg._io import atomic_write_text, write_json, write_table
from tspg._names import CLASSIFIER_METRICS, ENRICHMENT_RANKED, EVALUATION_TSV, MANIFEST, REPORT, safe_name
from tspg.data import InputError

log = logging.getLogger(__name__)

#: Files of a sweep folder.
PLAN = "sweep.json"
SUMMARY = "summary.tsv"
SWEEP_HTML = "sweep.html"
LOGS = "logs"
#: A finished gene set's rows of the summary, in its run folder (written last).
ROWS = "sweep_rows.tsv"
#: The Snakemake workflow shipped with the package (``--engine snakemake``).
SNAKEFILE = Path(__file__).with_name("Snakefile")
ENGINES: tuple[str, ...] = ("local", "snakemake")
#: Thread-count variables of the libraries a job uses (set for every job, by both engines).
THREAD_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: Columns of ``summary.tsv``, in order (see docs/sweeps.md).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "gene_set", "genes_used", "genes_missing", "target", "classifier_accuracy", "perturbation_accuracy",
    "success_logreg", "energy_distance", "energy_distance_floor", "best_baseline", "best_baseline_energy_distance",
    "energy_distance_genes", "c2st_auc", "up_term", "up_nes", "up_q", "down_term", "down_nes", "down_q", "report",
)


@dataclasses.dataclass
class SweepPlan:
    """What a sweep runs: ``tspg run`` with ``run_args`` on each gene set of ``gmt``, towards ``targets``.

    Attributes
    ----------
    gmt
        The GMT file (absolute path).
    gene_sets
        Gene set names, in the order of the summary.
    dirs
        Run folder name of each gene set (inside the sweep folder).
    targets
        Targets as given (``all`` is resolved by each run).
    run_args
        Options of ``tspg run`` shared by every gene set (paths absolute), without ``--gene-set``, ``--target``
        and ``--out``.
    threads
        Threads per job (cores / jobs).
    gpus
        GPUs per job (1 when ``--device`` names CUDA, else 0).
    """

    gmt: str
    gene_sets: list[str]
    dirs: list[str]
    targets: list[str]
    run_args: list[str]
    threads: int = 1
    gpus: int = 0

    def same_work(self, other: SweepPlan) -> bool:
        """Whether ``other`` trains the same way (the gene sets and the threads may differ)."""
        return (self.gmt, self.targets, self.run_args) == (other.gmt, other.targets, other.run_args)


def read_plan(out: str | Path) -> SweepPlan:
    """The plan in ``OUT/sweep.json``."""
    path = Path(out) / PLAN
    if not path.is_file():
        raise InputError(f"{out} is not a sweep folder (no {PLAN}); start one with 'tspg sweep'.")
    raw = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(SweepPlan)}
    return SweepPlan(**{k: v for k, v in raw.items() if k in fields})


def plan_sweep(out: Path, gmt: str | Path, names: list[str], all_sets: bool, targets: list[str],
               run_args: list[str], jobs: int = 1, gpus: int = 0, force: bool = False,
               threads: int | None = None) -> SweepPlan:
    """Check the sweep's inputs and write (or check) ``OUT/sweep.json``; return the plan.

    A sweep folder made with other training options is refused unless ``force`` (which removes it); the same
    options with other gene sets (or ``jobs``) continue it: finished gene sets are kept. ``threads`` per job
    defaults to this machine's cores / ``jobs``.
    """
    from tspg.data import read_gmt

    sets = read_gmt(gmt)
    if all_sets and names:
        raise InputError("Pass either --gene-set NAME ... or --all-gene-sets, not both.")
    if not all_sets and not names:
        raise InputError("Choose the gene sets to sweep: --gene-set NAME (repeatable) or --all-gene-sets.")
    chosen = list(sets) if all_sets else list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in sets]
    if unknown:
        raise InputError(f"{len(unknown)} gene set(s) not in {Path(gmt).name}: {', '.join(unknown[:5])}"
                         f"{' ...' if len(unknown) > 5 else ''} (it has {len(sets)}; names are case-sensitive).")
    dirs = [safe_name(n) for n in chosen]
    taken: dict[str, str] = {}
    for n, d in zip(chosen, dirs, strict=True):
        if d in (LOGS,) or d.startswith("."):
            d = "_" + d
        if d in taken:
            raise InputError(f"Gene sets '{taken[d]}' and '{n}' would share the folder '{d}'; sweep them apart.")
        taken[d] = n
    dirs = list(taken)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    plan = SweepPlan(gmt=str(Path(gmt).resolve()), gene_sets=chosen, dirs=dirs, targets=list(targets),
                     run_args=list(run_args), threads=threads or max(1, cores // max(1, jobs)), gpus=gpus)
    if force and out.exists():
        from tspg.workflow._lock import run_lock

        with run_lock(out, "tspg sweep --force"):  # refuses a folder a running sweep holds, before removing it
            pass
        shutil.rmtree(out)
    elif (out / PLAN).is_file():
        if not read_plan(out).same_work(plan):
            raise InputError(f"{out} holds a sweep made with other options or targets; repeat its command to "
                             "finish it, pass --force to replace it, or choose another --out.")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty and holds no sweep; choose another --out (or --force to replace it).")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / PLAN, dataclasses.asdict(plan))
    return plan


def finished(out: Path, plan: SweepPlan) -> list[str]:
    """The plan's run folders that are finished (their ``sweep_rows.tsv`` is written)."""
    return [d for d in plan.dirs if (out / d / ROWS).is_file()]


def run_gene_set(out: str | Path, directory: str) -> Path:
    """Run one gene set of the sweep in ``out`` and write its summary rows (the unit of both engines).

    A finished gene set is left as it is. A run folder killed before its first save is removed and started
    again; one killed later is finished with ``tspg run --resume`` (its classifier and completed targets are
    kept; the result equals an uninterrupted run's).

    Returns
    -------
    The path of the gene set's ``sweep_rows.tsv``.
    """
    from tspg.cli import run_cmd

    out = Path(out)
    plan = read_plan(out)
    if directory not in plan.dirs:
        raise InputError(f"No gene set folder '{directory}' in the sweep {out}; it has: {', '.join(plan.dirs)}.")
    name = plan.gene_sets[plan.dirs.index(directory)]
    run_dir = out / directory
    rows = run_dir / ROWS
    if rows.is_file():
        log.info("gene set %s: finished already", name)
        return rows
    if run_dir.exists() and not (run_dir / MANIFEST).is_file():
        log.info("gene set %s: %s holds no saved run (killed early); starting it again", name, run_dir)
        shutil.rmtree(run_dir)
    from tspg import settings

    settings.threads = plan.threads
    args = [*plan.run_args, "--gene-sets", plan.gmt, "--gene-set", name,
            *[a for t in plan.targets for a in ("--target", t)], "--out", str(run_dir), "--resume"]
    run_cmd.main(args=args, prog_name="tspg run", standalone_mode=False)
    frame = gene_set_rows(run_dir, name, plan.targets, link=f"{directory}/{REPORT}")
    return write_table(frame, rows, index=False)


def _ranked_top(path: Path) -> dict:
    """The first term up (``nes`` > 0) and down of a run's ranked enrichment over all its samples."""
    cells: dict = {}
    if not path.is_file():
        return cells
    frame = pd.read_csv(path, sep="\t")
    frame = frame[frame["source"].astype(str) == "all"] if "source" in frame.columns else frame
    for side, mask in (("up", frame["nes"] > 0), ("down", frame["nes"] < 0)):
        part = frame[mask].assign(absnes=frame["nes"].abs())
        part = part.sort_values(["q", "absnes"], ascending=[True, False], kind="stable")
        if len(part):
            top = part.iloc[0]
            cells.update({f"{side}_term": top["term"], f"{side}_nes": float(top["nes"]), f"{side}_q": float(top["q"])})
    return cells


def gene_set_rows(run_dir: str | Path, gene_set: str, targets: list[str], link: str = REPORT) -> pd.DataFrame:
    """One summary row per target of a finished run folder (columns :data:`SUMMARY_COLUMNS`).

    The enrichment columns are the ranked enrichment's (``enrichment_ranked.tsv``, all samples): the term with
    the lowest q among those up (``nes`` > 0) and among those down; empty without ``--enrich-gmt``. The realism
    columns are the evaluation's (empty with ``--no-evaluate``).
    """
    from tspg.data import resolve_targets
    from tspg.model import read_manifest
    from tspg.workflow._evaluation import headline
    from tspg.workflow._run import read_target_metrics

    run_dir = Path(run_dir)
    from tspg._names import target_dirname

    manifest = read_manifest(run_dir)
    clf = json.loads((run_dir / CLASSIFIER_METRICS).read_text())
    report = manifest.get("gene_sets", {}).get(gene_set, {})
    rows = []
    for t in resolve_targets(targets, manifest["classes"]):
        folder = run_dir / target_dirname(t)
        m = read_target_metrics(run_dir, t)
        row: dict = {"gene_set": gene_set, "genes_used": len(manifest["genes"]),
                     "genes_missing": report.get("n_missing"), "target": t,
                     "classifier_accuracy": clf.get("accuracy"), "perturbation_accuracy": m["perturbation_accuracy"]}
        if (folder / EVALUATION_TSV).is_file():
            h = headline(pd.read_csv(folder / EVALUATION_TSV, sep="\t"))
            row.update({k: h.get(k) for k in ("success_logreg", "energy_distance", "energy_distance_floor",
                                               "energy_distance_genes", "c2st_auc")})
            best = h.get("energy_distance_best_baseline")
            if best:
                row["best_baseline"], row["best_baseline_energy_distance"] = best[0], float(best[1])
        row.update(_ranked_top(folder / ENRICHMENT_RANKED))
        row["report"] = link
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=list(SUMMARY_COLUMNS))


def write_summary(out: str | Path) -> tuple[Path, Path, list[str]]:
    """Write ``OUT/summary.tsv`` and ``OUT/sweep.html`` from the finished gene sets, in the plan's order.

    Returns
    -------
    The two paths and the gene sets not finished (left out of both).
    """
    from tspg.report import build_sweep_page

    out = Path(out)
    plan = read_plan(out)
    done = set(finished(out, plan))
    frames = [pd.read_csv(out / d / ROWS, sep="\t", keep_default_na=False, na_values=[""])
              for d in plan.dirs if d in done]
    table = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).reindex(
        columns=list(SUMMARY_COLUMNS))
    missing = [n for n, d in zip(plan.gene_sets, plan.dirs, strict=True) if d not in done]
    summary = write_table(table, out / SUMMARY, index=False)
    page = atomic_write_text(out / SWEEP_HTML, build_sweep_page(table, out.resolve().name, plan.targets, missing))
    return summary, page, missing


#: Set by the local engine for its jobs: the sweep's pid, so that a job ends when the sweep is killed.
PARENT_VAR = "TSPG_SWEEP_PARENT"


def end_with_parent() -> None:
    """In a local sweep's job: end this process (SIGTERM) once the sweep that started it is gone.

    A sweep killed with SIGKILL cannot stop its jobs itself; each job watches that its parent is still the
    sweep's pid (``TSPG_SWEEP_PARENT``) and ends within a second of it going, so that running the sweep again
    never meets a job still writing.
    """
    parent = os.environ.get(PARENT_VAR)
    if not parent or not parent.isdigit():
        return
    pid = int(parent)

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="tspg-sweep-parent").start()


def _job_env(threads: int, gpu: str | None = None, watched: bool = True) -> dict[str, str]:
    """The environment of a job: its threads, its GPU, and (``watched``: the job is our child) our pid."""
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_VARS})
    env.pop(PARENT_VAR, None)
    if watched:
        env[PARENT_VAR] = str(os.getpid())
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def gpu_slots(jobs: int, gpus_per_job: int, visible: int) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` of each of ``jobs`` parallel slots: GPUs dealt out in turn (None: leave as is)."""
    if gpus_per_job == 0 or visible <= 1:
        return [None] * jobs
    return [str(i % visible) for i in range(jobs)]


def job_command(out: Path, directory: str) -> list[str]:
    """The command line of one gene set's job."""
    return [sys.executable, "-m", "tspg", "sweep-job", str(out), "--dir", directory]


def _watch(out: Path, plan: SweepPlan, running: Callable[[], bool], progress: bool) -> None:
    """A bar of finished gene sets, updated while ``running()``."""
    from tqdm.auto import tqdm

    start = len(finished(out, plan))
    with tqdm(total=len(plan.dirs), initial=start, desc="sweep", unit="gene set",
              disable=None if progress else True, leave=False, dynamic_ncols=True) as bar:
        while running():
            time.sleep(1.0)
            bar.update(len(finished(out, plan)) - bar.n)
        bar.update(len(finished(out, plan)) - bar.n)


def run_local(out: Path, plan: SweepPlan, jobs: int = 1, progress: bool = True) -> dict[str, int]:
    """Run the unfinished gene sets, ``jobs`` at a time, each a ``tspg sweep-job`` process (log in ``logs/``).

    Killing the sweep (SIGTERM or Ctrl-C) stops its jobs; running it again finishes the rest.

    Returns
    -------
    Gene set -> exit code, for the jobs that failed.
    """
    todo = [d for d in plan.dirs if not (out / d / ROWS).is_file()]
    log.info("sweep %s: %d of %d gene set(s) finished already; %d to run, %d at a time, %d thread(s) each",
             out, len(plan.dirs) - len(todo), len(plan.dirs), len(todo), jobs, plan.threads)
    (out / LOGS).mkdir(exist_ok=True)
    visible = 0
    if plan.gpus:
        import torch

        visible = torch.cuda.device_count()
    slots = gpu_slots(jobs, plan.gpus, visible)
    free = list(range(jobs))
    lock = threading.Lock()
    procs: dict[str, subprocess.Popen] = {}
    failed: dict[str, int] = {}
    stop = threading.Event()

    def one(directory: str) -> None:
        if stop.is_set():
            return
        with lock:
            slot = free.pop()
        name = plan.gene_sets[plan.dirs.index(directory)]
        began = time.perf_counter()
        try:
            with open(out / LOGS / f"{directory}.log", "wb") as fh:
                proc = subprocess.Popen(job_command(out, directory), stdout=fh, stderr=subprocess.STDOUT,
                                        env=_job_env(plan.threads, slots[slot]))
                with lock:
                    procs[directory] = proc
                rc = proc.wait()
        finally:
            with lock:
                procs.pop(directory, None)
                free.append(slot)
        if rc == 0:
            log.info("gene set %s: finished in %.0f s", name, time.perf_counter() - began)
        elif not stop.is_set():
            failed[name] = rc
            log.warning("gene set %s failed (exit %d): %s", name, rc, last_line(out / LOGS / f"{directory}.log"))

    def terminate(signum: int, frame: object) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() \
        else None
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(one, d) for d in todo]
        watcher = threading.Thread(target=_watch, args=(out, plan, lambda: not all(f.done() for f in futures),
                                                        progress), daemon=True)
        watcher.start()
        for f in futures:
            while not f.done():
                time.sleep(0.2)
            f.result()
        watcher.join()
    except KeyboardInterrupt:
        stop.set()
        with lock:
            for proc in procs.values():
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return failed


def run_snakemake(out: Path, plan: SweepPlan, jobs: int = 1, profile: str | None = None,
                  progress: bool = True) -> int:
    """Run the sweep as the package's Snakemake workflow (:data:`SNAKEFILE`); Snakemake's log goes to ``logs/``.

    Without ``profile`` Snakemake runs the jobs here on ``jobs x threads`` cores; with one (a folder of
    Snakemake's ``config.yaml``, e.g. for SLURM) the profile says where and how many.

    Returns
    -------
    Snakemake's exit code.
    """
    import importlib.util

    if importlib.util.find_spec("snakemake") is None:
        raise InputError("--engine snakemake needs Snakemake: pip install 'tspg[sweep]' (or snakemake>=8), or use "
                         "--engine local.")
    (out / LOGS).mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(out.resolve()),
           "--config", f"python={sys.executable}", "--rerun-incomplete", "--rerun-triggers", "mtime",
           "--printshellcmds"]
    cmd += ["--profile", str(Path(profile).resolve())] if profile else ["--cores", str(jobs * plan.threads)]
    log_path = out / LOGS / "snakemake.log"
    log.info("sweep %s: Snakemake runs %d gene set(s) (%d finished already); its log: %s", out, len(plan.dirs),
             len(finished(out, plan)), log_path)
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_job_env(plan.threads, watched=False))
        try:
            _watch(out, plan, lambda: proc.poll() is None, progress)
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise


def last_line(path: Path) -> str:
    """The last non-empty line of a job's log (its error, when it failed)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else "(empty log)"
