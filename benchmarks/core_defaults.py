"""Measure the generator defaults (kappa, w_norm) across several data sets, with held-out figures.

One command:  python benchmarks/core_defaults.py [--quick] [--out benchmarks/results/core_defaults.md]

For each data set the classifier is trained once (default settings, seed 0); then one generator per
configuration is trained for the data set's target with everything else at its default, checkpoints chosen on
the validation part, and the held-out (test) samples are perturbed. Figures: classifier held-out accuracy,
perturbation accuracy on held-out samples not already called the target, validation perturbation accuracy of
the chosen checkpoint, epochs run, mean |perturbation| (scaled units), mean L1 distance of perturbed samples to
the target's training mean (scaled units; the same for the unperturbed samples in brackets), wall time.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import torch

from tspg import TSPG, __version__
from tspg.data import Dataset, load_dataset, make_atlas
from tspg.train import GeneratorConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

CONFIGS = {
    "paper (kappa 0, w_norm 1, w_td 1)": {"kappa": 0.0, "w_norm": 1.0, "w_td": 1.0},
    "kappa 5, w_norm 1/sqrt(genes), w_td 1": {"kappa": 5.0, "w_norm": None, "w_td": 1.0},
    "default (kappa 5, w_norm 1/sqrt(genes), w_td 10)": {},
}


def datasets(quick: bool):
    atlas = make_atlas(seed=0)
    yield "demo atlas (900 x 500, 6 classes)", Dataset(atlas.gem, atlas.labels), "Liver"
    if not quick:
        big = make_atlas(n_classes=10, n_genes=2000, samples_per_class=60, marker_strength=1.0, seed=11)
        yield "atlas B (600 x 2,000, 10 classes, weak markers)", Dataset(big.gem, big.labels), "Lung"
    if (SHARED / "leukemia").is_dir():
        ds = load_dataset(SHARED / "leukemia" / "Leukemia_hgu95av2.trim.gct", SHARED / "leukemia" / "Leukemia.cls")
        yield "leukemia (48 x 9,020, 2 classes)", ds, "AML"
    if (SHARED / "pbmc68k").is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_dataset(SHARED / "pbmc68k" / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels", use_raw=True)
        yield "pbmc68k raw (700 x 765, 10 classes)", ds, "CD14+ Monocyte"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="demo atlas and real data only, two configurations")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core_defaults.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    configs = dict(list(CONFIGS.items())[::2]) if args.quick else CONFIGS
    lines = [
        "# Generator defaults measured across data sets",
        "",
        f"tspg {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {date.today()}; seed 0.",
        f"Command: `python benchmarks/core_defaults.py{' --quick' if args.quick else ''}`.",
        "",
        "pert. acc = share of held-out samples not already called the target that f calls the target after "
        "perturbation; val = the same on the validation part for the chosen checkpoint; dist = mean L1 distance "
        "(scaled units) of perturbed held-out samples to the target's training mean, unperturbed in brackets.",
        "",
    ]
    for name, ds, target in datasets(args.quick):
        print(f"== {name}", file=sys.stderr)
        t0 = time.perf_counter()
        model = TSPG(seed=0, progress=False).fit_classifier(ds)
        clf = model.classifier_metrics(ds)
        t_clf = time.perf_counter() - t0
        test = model.split[model.split == "test"].index
        x_test = model.scale(ds.gem.loc[test])
        mu_t = model.scaler.transform(ds.gem.loc[model.split[(model.split == "train") & (ds.labels == target)].index]
                                      .to_numpy(np.float32)).mean(0)
        lines += [f"## {name}, target {target}", "",
                  f"Classifier held-out accuracy {clf['accuracy']:.3f} on {clf['n_test']} samples "
                  f"({clf['epochs_trained']} epochs, {t_clf:.0f} s).", "",
                  "| configuration | pert. acc | n | val | epochs | mean abs P | dist to target mean | wall s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for cname, overrides in configs.items():
            model.generator_config = GeneratorConfig(**overrides)
            t0 = time.perf_counter()
            model.fit_generator(ds, target)
            wall = time.perf_counter() - t0
            res = model.perturb(ds.gem.loc[test], target, labels=ds.labels)
            m = res.metrics()
            hist = model.generator_histories[target]
            from tspg.train import kept_row

            best = kept_row(hist)
            fresh = res.proba_before.argmax(1) != model.classes.index(target)
            dist = np.abs(res.x_adv_scaled[fresh] - mu_t).mean()
            dist0 = np.abs(x_test[fresh] - mu_t).mean()
            lines.append(f"| {cname} | {m['perturbation_accuracy']:.3f} | {m['n_not_already_target']} | "
                         f"{best['val_accuracy']:.3f} | {len(hist)} | {m['mean_abs_perturbation_scaled']:.3f} | "
                         f"{dist:.3f} ({dist0:.3f}) | {wall:.0f} |")
            print(lines[-1], file=sys.stderr)
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
