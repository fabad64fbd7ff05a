"""A sweep of Hallmark gene sets x targets on real data, through both engines: the paper's Table 1, made by the tool.

One command:  python benchmarks/sweep.py [--sets 5] [--jobs 1] [--quick] [--out PATH]

On ``../shared/data/leukemia`` (48 samples, ALL vs AML, 9,020 genes; read where it lies, never copied) with the
MSigDB Hallmark collection of ``../shared/data/genesets``: the first ``--sets`` gene sets of the GMT in file order
(no choosing), ``--target all`` (both classes), default settings, seed 0, ``--enrich-gmt`` the same Hallmark file.
The same ``tspg sweep`` command runs once with ``--engine local`` and once with ``--engine snakemake``, each timed
in a fresh folder; the two ``summary.tsv`` files are compared byte for byte, and the summary is written beside the
timings to ``benchmarks/results/sweep_leukemia.md`` (``--quick``: 2 sets, 20 generator epochs,
``sweep_leukemia_quick.md``) with the CPU model and flags. Issue 11's done-when: the sweep completes with both
engines and identical summary values at the same seed.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pandas as pd  # noqa: E402
import speed  # noqa: E402  (machine facts)

from tspg._io import atomic_write_text  # noqa: E402

log = logging.getLogger("bench")
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SHOWN = ("gene_set", "genes_used", "genes_missing", "target", "classifier_accuracy", "perturbation_accuracy",
         "success_logreg", "energy_distance", "energy_distance_floor", "best_baseline", "c2st_auc", "up_term", "up_q",
         "down_term", "down_q")


def first_sets(gmt: Path, n: int) -> list[str]:
    """The names of the first ``n`` gene sets of a GMT, in file order."""
    names = [line.split("\t", 1)[0] for line in gmt.read_text().splitlines() if line.strip()]
    return names[:n]


def sweep(engine: str, out: Path, sets: list[str], jobs: int, quick: bool) -> tuple[float, str]:
    """Run one ``tspg sweep`` with ``engine`` into ``out``; its wall seconds and its summary.tsv text."""
    gmt = SHARED / "genesets" / "h.all.v7.0.symbols.gmt"
    args = [sys.executable, "-m", "tspg", "sweep", "--data", str(SHARED / "leukemia" / "Leukemia_hgu95av2.trim.gct"),
            "--labels", str(SHARED / "leukemia" / "Leukemia.cls"), "--gene-sets", str(gmt),
            *[a for s in sets for a in ("--gene-set", s)], "--target", "all", "--out", str(out), "--jobs", str(jobs),
            "--engine", engine, "--enrich-gmt", str(gmt), "--seed", "0", "--no-figures"]
    if quick:
        args += ["--epochs", "20"]
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"the {engine} sweep failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    log.info("%s engine: %.0f s", engine, wall)
    return wall, (out / "summary.tsv").read_text()


def cell(v) -> str:
    """One markdown table cell: floats to 3 significant places, missing as a dash."""
    if isinstance(v, float):
        return "-" if pd.isna(v) else (f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}")
    return str(v)


def write_report(out: Path, info: dict, sets: list[str], jobs: int, quick: bool, walls: dict, texts: dict,
                 total: float) -> bool:
    identical = texts["local"] == texts["snakemake"]
    table = pd.read_csv(pd.io.common.StringIO(texts["local"]), sep="\t")
    lines = [
        "# A sweep of Hallmark gene sets x targets on leukemia, through both engines",
        "",
        f"Written by `python benchmarks/sweep.py{' --quick' if quick else ''}` on {info['date']} in {total / 60:.1f}"
        f" min (load before: {info['load_before']}); seed 0, default settings"
        f"{' except 20 generator epochs' if quick else ''}, `--target all`, `--jobs {jobs}`, `--no-figures`.",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
        f"- Flags: {info['flags']}",
        f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}",
        f"- Data: `../shared/data/leukemia` (48 samples, ALL and AML, 9,020 genes); gene sets: the first {len(sets)}"
        " of `h.all.v7.0.symbols.gmt` in file order; `--enrich-gmt` the same file (ranked enrichment).",
        "",
        "| engine | wall seconds | summary.tsv |",
        "| --- | --- | --- |",
        f"| local | {walls['local']:.0f} | {len(table)} rows |",
        f"| snakemake | {walls['snakemake']:.0f} | {'byte-identical to local' if identical else 'DIFFERS'} |",
        "",
        f"- [{'x' if identical else ' '}] both engines complete and write the same `summary.tsv`: "
        f"{'met' if identical else 'NOT met'}.",
        "",
        "The summary (`summary.tsv`, a selection of its columns; `up_term`/`down_term`: the ranked enrichment's term"
        " with the lowest q among positive and among negative `nes`):",
        "",
        "| " + " | ".join(SHOWN) + " |",
        "| " + " | ".join("---" for _ in SHOWN) + " |",
    ]
    lines += ["| " + " | ".join(cell(rec[c]) for c in SHOWN) + " |" for rec in table.to_dict("records")]
    atomic_write_text(out, "\n".join(lines) + "\n")
    return identical


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=5, help="how many Hallmark gene sets (the GMT's first, in order)")
    ap.add_argument("--jobs", type=int, default=1, help="gene sets at once (the cores are split between them)")
    ap.add_argument("--quick", action="store_true", help="2 gene sets and 20 generator epochs")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not (SHARED / "leukemia").is_dir():
        log.info("skipped: %s is not here (the benchmark reads the shared leukemia data where it lies)", SHARED)
        return 0
    n_sets = 2 if args.quick else args.sets
    sets = first_sets(SHARED / "genesets" / "h.all.v7.0.symbols.gmt", n_sets)
    here = REPO / "benchmarks" / "results"
    out = args.out or here / ("sweep_leukemia_quick.md" if args.quick else "sweep_leukemia.md")
    info = speed.machine()
    began = time.perf_counter()
    walls, texts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "snakemake"):
            walls[engine], texts[engine] = sweep(engine, Path(tmp) / engine, sets, args.jobs, args.quick)
    ok = write_report(out, info, sets, args.jobs, args.quick, walls, texts, time.perf_counter() - began)
    log.info("wrote %s (%s)", out, "summaries identical" if ok else "summaries DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
