"""Quality benchmark with known truth: TSPG against baselines on planted-marker atlases and the real data sets.

    python benchmarks/quality.py            # every data set, writes benchmarks/results/quality.md
    python benchmarks/quality.py --quick    # small sets and few epochs (a smoke test), writes quality_quick.md

For each data set: one seeded split, the classifier f, one generator for the chosen target (tspg's defaults), the
baselines (identity, mean_shift, optimal_transport, nearest_target) on the same held-out samples, every metric of
`tspg.tl.METRICS`, and on synthetic data the recovery of the planted markers: precision@20 of the consensus
top-20 up (down) genes against the target's planted up (down) markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "src"))

from tspg import TSPG, tl  # noqa: E402
from tspg.data import Dataset, load_dataset, make_atlas  # noqa: E402
from tspg.train import ClassifierConfig, GeneratorConfig, predict_logits  # noqa: E402

log = logging.getLogger("quality")

METHODS = ("tspg", "identity", "mean_shift", "optimal_transport", "nearest_target")
SHOWN = ("success_f", "success_logreg", "success_knn", "centroid_accuracy", "energy_distance", "mmd",
         "r2_mean_de20", "pearson_delta", "de_overlap", "de_direction", "l2", "genes_moved")
# metrics compared in the per-data-set sentence, with the direction that is better
COMPARED = {"success_logreg": "higher", "success_knn": "higher", "centroid_accuracy": "higher",
            "energy_distance": "lower", "mmd": "lower", "r2_mean_de20": "higher", "pearson_delta": "higher",
            "de_direction": "higher", "precision20_up": "higher", "precision20_down": "higher", "l2": "lower"}


@dataclass
class Case:
    """One data set of the benchmark."""

    name: str
    description: str
    target: str
    load: object  # () -> (Dataset, markers or None)
    generator: dict = field(default_factory=dict)


def _atlas(**kw) -> object:
    def load():
        atlas = make_atlas(**kw)
        return Dataset(atlas.gem, atlas.labels.astype(str)), atlas.markers
    return load


def _leukemia():
    d = SHARED / "leukemia"
    return load_dataset(d / "Leukemia_hgu95av2.trim.gct", d / "Leukemia.cls"), None


def _pbmc():
    return load_dataset(SHARED / "pbmc68k" / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels", use_raw=True), None


def cases(quick: bool) -> list[Case]:
    """The benchmark's data sets (smaller ones in quick mode)."""
    if quick:
        return [Case("atlas_quick", "4 classes x 200 genes x 40 samples, markers +1.5", "Liver",
                     _atlas(n_classes=4, n_genes=200, samples_per_class=40, seed=0)),
                Case("atlas_quick_imbalanced", "5 classes x 300 genes, 10-80 samples per class", "Lung",
                     _atlas(n_classes=5, n_genes=300, samples_per_class=[80, 40, 20, 10, 60], seed=1))]
    out = [
        Case("atlas_demo", "6 classes x 500 genes x 150 samples, markers +1.5 (the demo atlas)", "Liver",
             _atlas(seed=0)),
        Case("atlas_50_classes", "50 classes x 2,000 genes x 30 samples, markers +1.5", "Liver",
             _atlas(n_classes=50, n_genes=2000, samples_per_class=30, seed=1)),
        Case("atlas_small_n", "5 classes x 200 genes x 10 samples (2 held out per class)", "Liver",
             _atlas(n_classes=5, n_genes=200, samples_per_class=10, seed=2)),
        Case("atlas_weak_markers", "6 classes x 500 genes x 100 samples, markers +0.5 (noise SD 0.5)", "Liver",
             _atlas(n_classes=6, n_genes=500, samples_per_class=100, marker_strength=0.5, seed=3)),
        Case("atlas_imbalanced", "8 classes x 1,000 genes, 300 down to 10 samples per class; target has 40",
             "Brain - Cortex", _atlas(n_classes=8, n_genes=1000, samples_per_class=[300, 150, 80, 40, 20, 15, 10, 10],
                                      seed=4)),
        Case("atlas_5000_genes", "10 classes x 5,000 genes x 60 samples, markers +1.5", "Liver",
             _atlas(n_classes=10, n_genes=5000, samples_per_class=60, seed=5)),
    ]
    if SHARED.is_dir():
        out += [Case("leukemia", "Golub leukemia, 48 samples x 9,020 genes (GCT/CLS), ALL -> AML", "AML", _leukemia),
                Case("pbmc68k", "10x PBMC 68k reduced, 700 cells x 765 genes (.raw), 10 cell types -> CD14+ Monocyte",
                     "CD14+ Monocyte", _pbmc)]
    return out


def _consensus(p_expr: np.ndarray, genes: list[str], sources: np.ndarray, k: int = 20) -> dict[str, list[str]]:
    frame = pd.DataFrame(p_expr, columns=genes, index=[f"s{i}" for i in range(len(p_expr))])
    per = tl.top_genes_per_sample(frame, pd.Series(sources, index=frame.index), k=k)
    summary = tl.top_gene_summary(per, frame)
    return {d: tl.consensus_genes(summary, d, k) for d in ("up", "down")}


def run_case(case: Case, seed: int, quick: bool) -> tuple[pd.DataFrame, dict]:
    """Train, perturb, run the baselines and score everything on one data set."""
    t0 = time.perf_counter()
    dataset, markers = case.load()
    cc = ClassifierConfig(epochs=10) if quick else ClassifierConfig()
    gc = GeneratorConfig(**({"epochs": 5} if quick else {}), **case.generator)
    model = TSPG(cc, gc, seed=seed, progress=False)
    model.fit_classifier(dataset)
    t1 = time.perf_counter()
    model.fit_generator(dataset, case.target)
    t2 = time.perf_counter()
    split = model.split
    train, test = split.index[split == "train"], split.index[split == "test"]
    x_train, y_train = model._scaled(dataset.gem.loc[train]), dataset.labels.loc[train].astype(str).to_numpy()
    x_test, y_test = model._scaled(dataset.gem.loc[test]), dataset.labels.loc[test].astype(str).to_numpy()
    classes = np.asarray(model.classes, dtype=object)

    def classify(v):
        return classes[predict_logits(model.classifier, v).argmax(1).numpy()]

    refs = tl.fit_references(x_train, y_train, classes=list(model.classes), seed=seed)
    tseed = model.target_seed(case.target)
    methods = {"tspg": model.perturb(dataset.gem.loc[test], case.target).x_adv_scaled,
               **tl.perturb_baselines(x_train, y_train, x_test, y_test, case.target, seed=tseed)}
    frame = tl.evaluate(refs, x_test, y_test, case.target, methods, classify=classify, seed=tseed)
    frame = frame[frame["source"] == "all"].drop(columns="source").set_index("method")
    if markers is not None:
        keep = y_test != case.target
        for m, x_adv in methods.items():
            p_expr = model.scaler.inverse_transform_delta((x_adv - x_test)[keep])
            top = _consensus(p_expr, model.genes, y_test[keep])
            for d in ("up", "down"):
                planted = set(markers[case.target][d])
                frame.loc[m, f"precision20_{d}"] = len(planted & set(top[d])) / 20
    clf = model.classifier_metrics(dataset)
    info = {"samples": dataset.gem.shape[0], "genes": dataset.gem.shape[1], "classes": len(model.classes),
            "classifier_accuracy": clf["accuracy"], "n_test": clf["n_test"],
            "classifier_s": t1 - t0, "generator_s": t2 - t1, "total_s": time.perf_counter() - t0,
            "generator": model.generator_summaries[case.target]}
    return frame, info


def _fmt(v: float) -> str:
    if pd.isna(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def verdict(frame: pd.DataFrame) -> str:
    """One sentence: the metrics where TSPG is best and those where a baseline is better (ties go to TSPG)."""
    wins, losses = [], []
    for metric, better in COMPARED.items():
        if metric not in frame.columns or pd.isna(frame.loc["tspg", metric]):
            continue
        others = frame.loc[[m for m in METHODS if m not in ("tspg", "identity") and m in frame.index], metric].dropna()
        if metric == "l2":  # size only matters among methods that reach the target
            continue
        if others.empty:
            continue
        best = others.idxmax() if better == "higher" else others.idxmin()
        t, b = frame.loc["tspg", metric], others[best]
        if (t >= b - 1e-9) if better == "higher" else (t <= b + 1e-9):
            wins.append(metric)
        else:
            losses.append(f"{metric} ({best} {_fmt(b)} vs TSPG {_fmt(t)})")
    return ("TSPG is best or tied on " + (", ".join(wins) if wins else "no compared metric") + "; a baseline is "
            "better on " + (", ".join(losses) if losses else "no compared metric") + ".")


def write_results(path: Path, results: list[tuple[Case, pd.DataFrame, dict]], seed: int, wall: float,
                  quick: bool) -> None:
    import sklearn
    import torch

    lines = ["# Quality benchmark: TSPG against baselines, with known truth", "",
             f"Regenerate: `python benchmarks/quality.py{' --quick' if quick else ''}` "
             f"({'quick mode: few epochs, not meaningful' if quick else 'default settings'}). "
             f"Date {dt.date.today().isoformat()}, seed {seed}, {platform.processor() or platform.machine()}, "
             f"{__import__('os').cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__}, "
             f"numpy {np.__version__}, scikit-learn {sklearn.__version__}; torch threads {torch.get_num_threads()}. "
             f"Wall time {wall / 60:.1f} min.", "",
             "Each data set: one stratified split (20% held out, 10% of the rest for validation), f and one "
             "generator with tspg's default settings, the baselines on the same held-out samples (all but the "
             "target class), and every metric on those samples; `real_target_train` is the floor (real target "
             "training samples against held-out target samples, size-matched). Success counts only samples the "
             "classifier did not already call the target. precision20: share of the consensus top-20 up (down) "
             "perturbed genes that are the target's planted up (down) markers (synthetic data only).", ""]
    for case, frame, info in results:
        cols = [c for c in (*SHOWN, "precision20_up", "precision20_down") if c in frame.columns]
        g = info["generator"]
        lines += [f"## {case.name}", "", f"{case.description}; target **{case.target}**. {info['samples']} samples, "
                  f"{info['genes']} genes, {info['classes']} classes; classifier held-out accuracy "
                  f"{info['classifier_accuracy']:.3f} ({info['n_test']} samples); generator best epoch "
                  f"{g.get('best_epoch')} of {g.get('epochs_trained')}; time: classifier {info['classifier_s']:.0f} s, "
                  f"generator {info['generator_s']:.0f} s, all {info['total_s']:.0f} s.", "",
                  "| method | n | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for m, row in frame.iterrows():
            lines.append(f"| {m} | {int(row['n'])} | " + " | ".join(_fmt(row[c]) for c in cols) + " |")
        lines += ["", verdict(frame), ""]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data and few epochs (a smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="run only these data sets (by name)")
    parser.add_argument("--out", type=Path, help="results file (default: benchmarks/results/quality[_quick].md)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: quality does not depend on it, and one thread is not slowed "
                             "down 10x or more by other work on the machine as several are)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tspg").setLevel(logging.WARNING)
    out = args.out or REPO / "benchmarks" / "results" / ("quality_quick.md" if args.quick else "quality.md")
    start = time.perf_counter()
    results = []
    for case in cases(args.quick):
        if args.only and case.name not in args.only:
            continue
        frame, info = run_case(case, args.seed, args.quick)
        log.info("%s: %.0f s; tspg success f %.3f, logreg %.3f; energy %.3g (floor %.3g)", case.name,
                 info["total_s"], frame.loc["tspg", "success_f"], frame.loc["tspg", "success_logreg"],
                 frame.loc["tspg", "energy_distance"], frame.loc["real_target_train", "energy_distance"])
        results.append((case, frame, info))
        write_results(out, results, args.seed, time.perf_counter() - start, args.quick)
    log.info("wrote %s (%.1f min)", out, (time.perf_counter() - start) / 60)


if __name__ == "__main__":
    main()
