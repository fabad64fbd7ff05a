"""The conditional generator's prior alone, under each shrinkage rule and covariance, against one target's prior.

One command:  python benchmarks/conditional_prior.py [--seeds 3]   (about 8 min on 2 cores)

What the conditional generator keeps where its best epoch is 0 (the prior alone), measured without a generator:
per data set and seed, tspg's default split and classifier, then every class a target; each held-out sample of
another class is moved by its own class's map (``prior_assign`` label) of

- ``cond_<shrink>_<covariance>``: :func:`tspg.train.fit_conditional_prior` (all targets in one PCA space; the
  shrinkage of each class's mean, :func:`tspg.train.shrunk_class_means`);
- ``pair_eb_<covariance>``: one target's prior, :func:`tspg.train.fit_transport_prior` with ``shrink="eb"`` (each
  pair of classes shrunk on its own; what a per-target generator starts from);
- the ``mean_shift`` and ``optimal_transport`` baselines,

scored as the quality benchmark scores (``tspg.tl.evaluate``; energy distance in PCA and in the scaled gene space,
c2st, success under f), mean over the targets, then mean +- sd over seeds. Data: the 26-class synthetic atlas of
``benchmarks/conditional.py`` (26 classes x 520 genes x 20 samples) and pbmc68k (``../shared/data/pbmc68k``, 10 cell
types). Writes ``benchmarks/results/conditional_prior.md`` with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import speed  # noqa: E402  (machine facts)
import torch  # noqa: E402

from tspg import TSPG, tl  # noqa: E402
from tspg._io import atomic_write_text  # noqa: E402
from tspg.data import load_dataset, make_atlas  # noqa: E402
from tspg.train import fit_conditional_prior, fit_transport_prior, predict_logits  # noqa: E402
from tspg.workflow._evaluation import _part  # noqa: E402

log = logging.getLogger("bench")
FIGURES = ("energy_distance", "energy_distance_genes", "c2st_auc", "success_f")
#: name -> (shrink, covariance) of the conditional prior
CONDITIONAL = {"cond_none_own": ("none", "own"), "cond_none_blend": ("none", "blend"), "cond_eb_own": ("eb", "own"),
               "cond_eb_blend": ("eb", "blend"), "cond_js_own": ("js", "own")}
#: name -> covariance of one target's eb-shrunk prior
PAIRWISE = {"pair_eb_own": "own", "pair_eb_blend": "blend"}
BASELINES = ("mean_shift", "optimal_transport")
NOTES = {"cond_none_own": "the conditional default before", "cond_eb_blend": "the conditional default now",
         "pair_eb_blend": "one target's default prior"}


def run(ds, seed: int) -> list[dict]:
    """One data set and seed: every prior of every target on the held-out samples; one row per (target, method)."""
    model = TSPG(seed=seed, progress=False)
    model.fit_classifier(ds)
    x_tr, y_tr, _ = _part(model, ds, "train")
    x_te, y_te, _ = _part(model, ds, "test")
    classes = list(model.classes)
    index = {c: i for i, c in enumerate(classes)}
    yi_tr = np.array([index[c] for c in y_tr])
    yi_te = torch.as_tensor(np.array([index[c] for c in y_te]))
    names = np.asarray(classes, dtype=object)

    def classify(v: np.ndarray) -> np.ndarray:
        return names[predict_logits(model.classifier, v, device="cpu").argmax(1).numpy()]

    refs = tl.fit_references(x_tr, y_tr, classes=classes, seed=seed)
    targets = list(range(len(classes)))
    conditional = {m: fit_conditional_prior(x_tr, yi_tr, targets, len(classes), seed=seed, covariance=cov,
                                            shrink=sh) for m, (sh, cov) in CONDITIONAL.items()}
    xt = torch.as_tensor(x_te, dtype=torch.float32)
    rows = []
    for ti, t in enumerate(classes):
        to_t = torch.full((len(xt),), ti, dtype=torch.long)
        with torch.no_grad():
            methods = {m: (xt + p(xt, to_t, yi_te)).numpy() for m, p in conditional.items()}
            for m, cov in PAIRWISE.items():
                p = fit_transport_prior(x_tr, yi_tr, ti, len(classes), seed=seed, shrink="eb", covariance=cov)
                methods[m] = (xt + p(xt, yi_te)).numpy()
        methods.update(tl.perturb_baselines(x_tr, y_tr, x_te, y_te, t, names=list(BASELINES), seed=seed))
        frame = tl.evaluate(refs, x_te, y_te, t, methods, classify=classify, seed=seed)
        frame = frame[frame["source"] == "all"].set_index("method")
        rows += [{"seed": seed, "target": t, "method": m, **{k: float(frame.loc[m, k]) for k in FIGURES}}
                 for m in methods]
    return rows


def main() -> int:
    """Run every data set and seed and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "conditional_prior.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("tspg", "tspg.library"):
        logging.getLogger(name).setLevel(logging.WARNING)
    info = speed.machine()
    began = time.perf_counter()
    pbmc = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbmc68k" / "10x_pbmc68k_reduced.h5ad"
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("26-class atlas", "pbmc68k, every type a target"):
            rows = []
            for seed in range(args.seeds):
                if name.startswith("pbmc"):
                    ds = load_dataset(pbmc, labels_key="bulk_labels", use_raw=True)
                else:
                    atlas = make_atlas(n_classes=26, n_genes=520, samples_per_class=20, n_markers=10, seed=seed)
                    paths = atlas.write(Path(tmp) / f"atlas{seed}")
                    ds = load_dataset(paths["data"], paths["labels"])
                rows += run(ds, seed)
                log.info("%s seed %d done (%.0f s)", name, seed, time.perf_counter() - began)
            per_seed = pd.DataFrame(rows).groupby(["method", "seed"])[list(FIGURES)].mean()
            tables[name] = per_seed.groupby("method").agg(["mean", "std"])
    lines = ["# The conditional generator's prior alone: shrinkage and covariance", "",
             f"Written by `python benchmarks/conditional_prior.py --seeds {args.seeds}` on "
             f"{time.strftime('%Y-%m-%d %H:%M')} in {(time.perf_counter() - began) / 60:.1f} min. Per data set and "
             "seed: tspg's default split and classifier; every class a target; each held-out sample of another "
             "class moved by its own class's map of each prior (no generator: what the conditional generator keeps "
             "at epoch 0), scored against the target's real held-out samples as the quality benchmark scores; "
             "figures are the mean over the targets, then mean +- sd over seeds. `cond_<shrink>_<covariance>`: "
             "the conditional prior (each class's mean shrunk towards the mean of all class means); "
             "`pair_eb_<covariance>`: one target's prior with each pair of classes shrunk on its own.", "",
             f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
             f"- Flags: {info['flags']}",
             f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}"]
    order = [*CONDITIONAL, *PAIRWISE, *BASELINES]
    for name, tab in tables.items():
        lines += ["", f"## {name}", "", "| method | " + " | ".join(FIGURES) + " |",
                  "| --- | " + " | ".join("---" for _ in FIGURES) + " |"]
        for m in order:
            cells = [f"{tab.loc[m, (k, 'mean')]:.3f} ± {tab.loc[m, (k, 'std')]:.3f}" for k in FIGURES]
            note = f" ({NOTES[m]})" if m in NOTES else ""
            lines.append(f"| {m}{note} | " + " | ".join(cells) + " |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
