"""Linear counts: ``--transform log2p1`` against no transform, scored in one common space, over seeds.

A run without a transform and a run with ``log2p1`` are evaluated by ``tspg run`` in different units (scaled
counts, scaled log counts), so their own evaluation tables cannot be compared. Here both runs' perturbed held-out
samples are mapped into the same two spaces and scored there by :func:`tspg.tl.evaluate` against the same real
held-out target samples:

- **log space**: ``log2(x + 1)`` of the counts (negative perturbed counts clipped to 0 first), min-max scaled on
  the training part; where expression differences of RNA-seq are usually judged.
- **count space**: the counts themselves (``2^x - 1`` of the log2p1 run's output), min-max scaled on the training
  part.

Data: synthetic atlases (:func:`tspg.data.make_atlas`, log-scale expression) turned into counts by
``round(2^x - 1)``, as the front-door issue's tests do; default settings otherwise; one target per set.

Run ``python benchmarks/transform.py`` (``--seeds N``, default 5; ``--quick``: 5 generator epochs, one seed, to
``transform_quick.md``); writes ``benchmarks/results/transform.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine  # noqa: E402

from tspg import TSPG, tl  # noqa: E402
from tspg.data import Dataset, make_atlas  # noqa: E402
from tspg.model import ClassifierConfig, GeneratorConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TRANSFORMS = ("none", "log2p1")
METRICS = ["success_logreg", "energy_distance", "energy_distance_genes", "c2st_auc"]
FLOOR = "real_target_train"


@dataclass(frozen=True)
class Case:
    """One synthetic counts atlas."""

    name: str
    n_classes: int
    n_genes: int
    samples_per_class: int


CASES = (Case("counts_3x150", 3, 150, 30), Case("counts_6x500", 6, 500, 40))


def counts_dataset(case: Case, seed: int) -> Dataset:
    """The atlas of ``case`` as linear counts (``round(2^x - 1)``)."""
    atlas = make_atlas(n_classes=case.n_classes, n_genes=case.n_genes, samples_per_class=case.samples_per_class,
                       n_markers=10, seed=100 + seed)
    counts = np.round(np.exp2(atlas.gem.astype(np.float64)) - 1.0).clip(lower=0).astype(np.float32)
    return Dataset(gem=counts, labels=atlas.labels.astype(str))


def _scaled(values: np.ndarray, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    return ((values - lo) / span).astype(np.float32)


def run_case(case: Case, seed: int, quick: bool) -> dict[str, pd.DataFrame]:
    """Train one model per transform on the same split; score every perturbed held-out sample in both spaces."""
    dataset = counts_dataset(case, seed)
    target = sorted(dataset.labels.unique())[0]
    perturbed, split = {}, None
    for transform in TRANSFORMS:
        model = TSPG(ClassifierConfig(epochs=10) if quick else ClassifierConfig(),
                     GeneratorConfig(epochs=5) if quick else GeneratorConfig(), seed=seed, progress=False,
                     transform=transform)
        model.fit_classifier(dataset)
        model.fit_generator(dataset, target)
        if split is not None and not split.equals(model.split):
            raise RuntimeError("the two transforms split the samples differently")
        split = model.split
        test = split.index[split == "test"]
        units = model.perturb(dataset.gem.loc[test], target).perturbed_expr.to_numpy(np.float64)
        perturbed[transform] = np.clip(units, 0, None) if transform == "none" else np.exp2(units) - 1.0
    counts = dataset.gem.to_numpy(np.float64)
    rows = {p: (split == p).to_numpy() for p in ("train", "test")}
    y = dataset.labels.to_numpy()
    frames = {}
    for space, fwd in (("log", lambda v: np.log2(np.clip(v, 0, None) + 1.0)), ("count", lambda v: v)):
        real = fwd(counts)
        lo, hi = real[rows["train"]].min(0), real[rows["train"]].max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        x_train, x_test = _scaled(real[rows["train"]], lo, span), _scaled(real[rows["test"]], lo, span)
        refs = tl.fit_references(x_train, y[rows["train"]], seed=seed)
        methods = {f"tspg ({t})": _scaled(fwd(perturbed[t]), lo, span) for t in TRANSFORMS}
        methods.update(tl.perturb_baselines(x_train, y[rows["train"]], x_test, y[rows["test"]], target, seed=seed,
                                            names=["mean_shift", "optimal_transport"]))
        frame = tl.evaluate(refs, x_test, y[rows["test"]], target, methods, metrics=METRICS, seed=seed)
        frames[space] = frame[frame["source"] == "all"].drop(columns=["source", "n"]).set_index("method")
    return frames


def _ms(values: list[float], digits: int = 3) -> str:
    if np.isnan(values).all():  # a metric a method has no value for (the floor's success and c2st)
        return "-"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


def write(path: Path, results: dict[str, list[dict[str, pd.DataFrame]]], info: dict, total_s: float,
          seeds: int) -> list[tuple[str, bool]]:
    """The markdown table per case and space, and the front-door issue's checks; returns the checks."""
    lines = ["# Linear counts: `--transform log2p1` against no transform, in one common space", "",
             f"Written by `python benchmarks/transform.py{' --quick' if info['quick'] else ''} --seeds {seeds}` on "
             f"{info['date']} in {total_s / 60:.1f} min. Mean ± sd over {seeds} seed(s); held-out samples of the "
             "non-target classes, perturbed to the first class; default settings (`tspg run`'s); "
             "the same split for both transforms. See the module docstring for the two spaces.", "",
             f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}; load "
             f"before {info['load_before']}",
             f"- Flags: {info['flags']}", f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}",
             ""]
    checks = []
    for case, per_seed in results.items():
        for space in ("log", "count"):
            stack = [r[space] for r in per_seed]
            methods = list(stack[0].index)
            lines += [f"## {case}, {space} space", "", "| method | " + " | ".join(METRICS) + " |",
                      "| --- |" + " --- |" * len(METRICS)]
            for m in methods:
                lines.append(f"| {m} | " + " | ".join(_ms([float(s.loc[m, k]) for s in stack]) for k in METRICS)
                             + " |")
            lines.append("")
            energy = {m: [float(s.loc[m, "energy_distance_genes"]) for s in stack] for m in methods}
            floor = np.mean(energy[FLOOR])
            ratios = {t: np.mean(energy[f"tspg ({t})"]) / floor for t in TRANSFORMS}
            lines += [f"Energy distance in the gene space over its floor (`{FLOOR}`): "
                      + ", ".join(f"{t} {r:.2f}x" for t, r in ratios.items()) + ".", ""]
            if space == "log":
                checks.append((f"{case}: log2p1 energy (gene space) within 1.5x the real-vs-real floor "
                               f"({ratios['log2p1']:.2f}x)", bool(ratios["log2p1"] <= 1.5)))
            for k in ("energy_distance", "energy_distance_genes"):
                a, b = (np.mean([float(s.loc[f"tspg ({t})", k]) for s in stack]) for t in ("log2p1", "none"))
                checks.append((f"{case}, {space} space: log2p1 {k} {a:.4f} at most no transform's {b:.4f}",
                               bool(a <= b)))
    lines += ["## Done when (front-door issue)", ""]
    lines += [f"- [{'x' if ok else ' '}] {text}: {'met' if ok else 'not met'}" for text, ok in checks]
    path.write_text("\n".join(lines) + "\n")
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tspg").setLevel(logging.ERROR)  # the counts warning is expected for `none`
    seeds = 1 if args.quick else args.seeds
    info = {**machine(), "quick": args.quick}
    t0 = time.perf_counter()
    results = {}
    for case in CASES:
        results[case.name] = []
        for seed in range(seeds):
            t = time.perf_counter()
            results[case.name].append(run_case(case, seed, args.quick))
            logging.info("%s seed %d: %.0f s", case.name, seed, time.perf_counter() - t)
    out = args.out or RESULTS / ("transform_quick.md" if args.quick else "transform.md")
    checks = write(out, results, info, time.perf_counter() - t0, seeds)
    for text, ok in checks:
        logging.info("%s: %s", text, "met" if ok else "NOT met")
    logging.info("wrote %s", out)


if __name__ == "__main__":
    main()
