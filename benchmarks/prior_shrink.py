"""The transport prior alone under each shrinkage rule and covariance, over seeds, on the quality benchmark's sets.

With a prior the generator keeps the map alone (epoch 0) on most data sets, so how the prior's mean shift is
estimated decides most of TSPG's realism. This benchmark applies the prior of each ``--prior-shrink`` rule
(``none``: the plain Gaussian OT map; ``js``: per-gene James-Stein factors; ``eb``: empirical Bayes over the genes,
the default) with each ``--prior-covariance`` (``own``: each class's own Ledoit-Wolf covariance; ``blend``: blended
with the pooled within-class covariance by a cross-validated weight, the default), the eb-shrunk mean shift
(``--prior mean``) and the default with each sample assigned to its nearest class centroid (``--prior-assign
nearest``; every other rule uses the sample's label, as the default does), to the held-out samples of the quality
benchmark's splits, with no generator and no classifier, and scores them as the quality benchmark does (c2st, energy
distance in the training part's PCA and in the scaled gene space, against the real held-out target samples). On the
synthetic atlases it adds ``true_target``: new draws of the target from the atlas's own distribution (on the paired
atlas, each sample moved by its own true transition), i.e. what a perfect transition gets against the same held-out
samples.

Run ``python benchmarks/prior_shrink.py`` (``--seeds N``, default 5; ``--only NAME ...``); writes
``benchmarks/results/prior_shrink.md``. One process; about 5 minutes for 10 seeds on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import TRUE_TARGET, cases  # noqa: E402
from speed import machine  # noqa: E402

from tspg import tl  # noqa: E402
from tspg.data import MinMaxScaler, stratified_split  # noqa: E402
from tspg.tl._baselines import clip_perturbed, optimal_transport  # noqa: E402
from tspg.tl._metrics import c2st_auc, energy_distance  # noqa: E402
from tspg.train import fit_transport_prior, project  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: Maps compared: name -> (``--prior``, ``--prior-shrink``, ``--prior-covariance``). ``none``: the
#: ``optimal_transport`` baseline; ``eb``: the default.
RULES = {"none": ("ot", "none", "own"), "js": ("ot", "js", "own"), "eb_own": ("ot", "eb", "own"),
         "js_blend": ("ot", "js", "blend"), "eb": ("ot", "eb", "blend"), "mean_eb": ("mean", "eb", "own"),
         "eb_nearest": ("ot", "eb", "blend", "nearest")}


#: The pairs whose per-seed differences the results file gives: the default and each default before it.
PAIRED = ((("eb", "eb_own"), "The default's covariance against each class's own"),
          (("eb", "eb_nearest"), "Each sample's labelled class against its nearest centroid"))


def moved_by(x_train, y_train, x, sources, target, seed: int, kind: str, shrink: str, covariance: str,
             assign: str = "label") -> np.ndarray:
    """``x`` moved by the prior of these settings (its source class's map, or with ``assign="nearest"`` the map of
    its nearest class centroid; target samples unchanged)."""
    if assign == "nearest":
        classes = np.unique(y_train)
        prior = fit_transport_prior(x_train, np.searchsorted(classes, y_train),
                                    int(np.searchsorted(classes, target)), len(classes), kind=kind, seed=seed,
                                    shrink=shrink, covariance=covariance)
        x = np.asarray(x, dtype=np.float32)
        with torch.no_grad():
            return clip_perturbed(x, x + prior(torch.as_tensor(x)).numpy())
    if kind == "ot":
        return optimal_transport(x_train, y_train, x, sources, target, seed=seed, shrink=shrink,
                                 covariance=covariance)
    classes = np.unique(y_train)
    prior = fit_transport_prior(x_train, np.searchsorted(classes, y_train), int(np.searchsorted(classes, target)),
                                len(classes), kind=kind, seed=seed, shrink=shrink)
    x_adv = np.asarray(x, dtype=np.float32).copy()
    for cls in np.unique(sources):
        if cls != target:
            rows = sources == cls
            c = torch.full((int(rows.sum()),), int(np.searchsorted(classes, cls)), dtype=torch.long)
            with torch.no_grad():
                x_adv[rows] += prior(torch.as_tensor(x_adv[rows]), classes=c).numpy()
    return clip_perturbed(np.asarray(x, dtype=np.float32), x_adv)
log = logging.getLogger("prior_shrink")


def run_case(case, seed: int) -> list[dict]:
    """Every rule's map (and the true target, on synthetic sets) on one split, scored."""
    dataset, _, true_delta, draw = case.load()
    labels = dataset.labels.astype(str)
    split = stratified_split(labels, seed=seed)  # the split TSPG(seed=seed) makes
    gem = dataset.gem.to_numpy(np.float32)
    train, test = (split == "train").to_numpy(), (split == "test").to_numpy()
    scaler = MinMaxScaler.fit(gem[train])
    x_train, y_train = scaler.transform(gem[train]), labels.to_numpy()[train]
    x_test, y_test = scaler.transform(gem[test]), labels.to_numpy()[test]
    others = y_test != case.target
    x, sources = x_test[others], y_test[others]
    x_target = x_test[~others]
    refs = tl.fit_references(x_train, y_train, seed=seed)
    z_target = project(refs.pca, x_target)
    moved = {rule: moved_by(x_train, y_train, x, sources, case.target, seed, *how) for rule, how in RULES.items()}
    if true_delta is not None:
        delta = true_delta.loc[split.index[test]].to_numpy(np.float64)[others] / scaler.data_range
        moved[TRUE_TARGET] = (x + delta).astype(np.float32)
    elif draw is not None:
        moved[TRUE_TARGET] = scaler.transform(draw(case.target, len(x), seed=10_000 + seed).to_numpy())
    rows = []
    for name, v in moved.items():
        z = project(refs.pca, v)
        rows.append({"case": case.name, "seed": seed, "method": name, "c2st_auc": c2st_auc(z, z_target, seed=seed),
                     "energy_distance": energy_distance(z, z_target),
                     "energy_distance_genes": energy_distance(v.astype(np.float64), x_target.astype(np.float64)),
                     "n_target": len(x_target)})
    return rows


def write(frame: pd.DataFrame, path: Path, seeds: int, wall: float, info: dict) -> None:
    """The table (mean ± sd over seeds) per data set and rule."""
    cols = ("c2st_auc", "energy_distance", "energy_distance_genes")
    lines = ["# The transport prior alone under each shrinkage rule and covariance", "",
             f"Regenerate: `python benchmarks/prior_shrink.py --seeds {seeds}`. {info['date']}; CPU {info['cpu']} "
             f"({info['flags']}), {info['cores']} cores; torch {info['torch']}, numpy {info['numpy']}. "
             f"Wall time {wall / 60:.1f} min.", "",
             "Each data set and seed: the quality benchmark's split; a prior applied to the held-out non-target "
             "samples (no generator, no classifier: what the default keeps when its best epoch is 0), scored "
             "against the real held-out target samples. Rules: `none`, `--prior ot --prior-shrink none "
             "--prior-covariance own` (the `optimal_transport` baseline); `js` and `eb_own`, `--prior-shrink js` and "
             "`eb` with `--prior-covariance own` (the default before 0.5); `js_blend`, `--prior-shrink js "
             "--prior-covariance blend`; **`eb`, `--prior-shrink eb --prior-covariance blend` (the default)**; "
             "`mean_eb`, `--prior mean --prior-shrink eb` (the eb-shrunk class-mean shift); `eb_nearest`, the "
             "default's map with each sample assigned to the nearest class centroid (`--prior-assign nearest`, the "
             "rule before 0.6; every other rule moves a sample by its labelled class's map). "
             "c2st_auc: cross-validated AUC of a logistic regression on the PCA coordinates and their squares "
             "(0.5: indistinguishable); energy distances in the training part's PCA (50 components) and in the "
             "scaled gene space. `true_target` (synthetic sets): new draws of the target from the atlas's own "
             "distribution, as many as the perturbed samples (paired atlas: each sample moved by its own true "
             "transition): what a perfect transition gets against the same few held-out samples. Cells: mean ± sd "
             "over seeds; n: real held-out target samples per seed.", "",
             "| data set | n | rule | " + " | ".join(cols) + " |", "|---|---:|---|" + "---:|" * len(cols)]
    for case, part in frame.groupby("case", sort=False):
        for method, rows in part.groupby("method", sort=False):
            cells = [f"{rows[c].mean():.3f} ± {rows[c].std(ddof=1):.3f}" if len(rows) > 1 else f"{rows[c].mean():.3f}"
                     for c in cols]
            lines.append(f"| {case} | {rows['n_target'].mean():.0f} | {method} | " + " | ".join(cells) + " |")
    for pair, what in PAIRED:
        lines += ["", f"## {what} (`{pair[0]}` minus `{pair[1]}`, same split)",
                  "", "Per data set and figure: the mean over seeds of the per-seed difference ± its sd, and in how "
                  "many seeds the default is lower (better).", "", "| data set | " + " | ".join(cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for case, part in frame.groupby("case", sort=False):
            wide = {m: rows.set_index("seed") for m, rows in part.groupby("method")}
            if not all(m in wide for m in pair):
                continue
            cells = []
            for c in cols:
                d = (wide[pair[0]][c] - wide[pair[1]][c]).dropna()
                sd = f" ± {d.std(ddof=1):.3f}" if len(d) > 1 else ""
                cells.append(f"{d.mean():+.3f}{sd} ({int((d < 0).sum())} of {len(d)})")
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per data set (default 5)")
    parser.add_argument("--only", nargs="*", help="run only these data sets (by name)")
    parser.add_argument("--out", type=Path, default=RESULTS / "prior_shrink.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    info, start, rows = machine(), time.perf_counter(), []
    for case in [c for c in cases(False) if not args.only or c.name in args.only]:
        for seed in range(args.seeds):
            rows += run_case(case, seed)
            log.info("%s seed %d done (%.0f s)", case.name, seed, time.perf_counter() - start)
    write(pd.DataFrame(rows), args.out, args.seeds, time.perf_counter() - start, info)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
