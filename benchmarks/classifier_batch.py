"""Classifier batch size and learning rate: does a larger batch keep f's held-out accuracy while cutting its time?

One command:  python benchmarks/classifier_batch.py [--seeds 3] [--out benchmarks/results/classifier_batch.md]

For every data set of the quality benchmark (``benchmarks/quality.py``: the synthetic atlases, leukemia and pbmc68k
where ``../shared/data`` has them) and a GTEx-scale atlas (W3 of ``benchmarks/speed.py``: 11,688 x 4,386, 53
classes), f (the paper's 1024-512-128 architecture, everything else at tspg's defaults) is fitted on the quality
benchmark's split of each seed with each setting below, and its held-out accuracy and fitting time are recorded.
Same seed, same split and same initial weights for every setting; only the batch size and learning rate differ.
Cells are mean +- sd over seeds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402
import speed  # noqa: E402

from tspg import TSPG  # noqa: E402
from tspg.data import Dataset  # noqa: E402
from tspg.train import ClassifierConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: setting -> (batch size, learning rate); the first is tspg's default (the paper's batch 32, Adam 1e-3)
SETTINGS = {
    "b32 lr1e-3 (default)": (32, 1e-3),
    "b128 lr1e-3": (128, 1e-3),
    "b128 lr2e-3": (128, 2e-3),
    "b512 lr4e-3": (512, 4e-3),
}


def _w3():
    a = speed.atlas(53, 4386, 11_688)
    return Dataset(a.gem, a.labels.astype(str)), None, None, None


def data_sets() -> list[tuple[str, object]]:
    """(name, loader) of the quality benchmark's data sets and W3."""
    return [(c.name, c.load) for c in quality.cases(quick=False)] + [("W3 (11,688 x 4,386, 53 classes)", _w3)]


def fit_one(dataset: Dataset, seed: int, batch: int, lr: float) -> tuple[float, float, int]:
    """Held-out accuracy, seconds and epochs of one classifier fit."""
    model = TSPG(ClassifierConfig(batch_size=batch, lr=lr), seed=seed, progress=False)
    t0 = time.perf_counter()
    model.fit_classifier(dataset)
    seconds = time.perf_counter() - t0
    metrics = model.classifier_metrics(dataset)
    return metrics["accuracy"], seconds, metrics["epochs_trained"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per data set (default 3)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "classifier_batch.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    start = time.perf_counter()
    rows = []
    for name, load in data_sets():
        dataset = load()[0]
        res = {k: [] for k in SETTINGS}
        for seed in range(args.seeds):
            for key, (batch, lr) in SETTINGS.items():
                res[key].append(fit_one(dataset, seed, batch, lr))
                logging.getLogger("classifier_batch").warning("%s seed %d %s: %s", name, seed, key, res[key][-1])
        rows.append((name, dataset.gem.shape, res))
    total = (time.perf_counter() - start) / 60
    info = speed.machine()
    lines = ["# Classifier: batch size and learning rate", "",
             f"Regenerate: `python benchmarks/classifier_batch.py --seeds {args.seeds}`. "
             f"{datetime.now():%Y-%m-%d %H:%M}; wall time {total:.1f} min.", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}; flags "
             f"{info['flags']}; torch {info['torch']}.", "",
             __doc__.split("\n\n", 2)[2].strip(), "",
             "| data set | samples x genes | setting | held-out accuracy | fit s | epochs | time vs default |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, shape, res in rows:
        base = np.mean([r[1] for r in res[next(iter(SETTINGS))]])
        for key, runs in res.items():
            acc, sec, ep = (np.array([r[i] for r in runs], float) for i in range(3))
            lines.append(f"| {name} | {shape[0]:,} x {shape[1]:,} | {key} | {acc.mean():.3f} +- "
                         f"{acc.std(ddof=1):.3f} | {sec.mean():.1f} | {ep.mean():.1f} | {sec.mean() / base:.2f}x |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} ({total:.1f} min)")


if __name__ == "__main__":
    main()
