"""Quality benchmark with known truth: TSPG against baselines on planted-marker atlases and the real data sets.

    python benchmarks/quality.py            # every data set, 5 seeds, writes benchmarks/results/quality.md
    python benchmarks/quality.py --quick    # small sets and few epochs (a smoke test), writes quality_quick.md
    python benchmarks/quality.py --compare tspg_paper   # also the paper's loss on every split (slower: 150 epochs)

For each data set: one seeded split, the classifier f, one generator for the chosen target (tspg's defaults), the
baselines (identity, mean_shift, optimal_transport, nearest_target) on the same held-out samples, every metric of
`tspg.tl.METRICS`, and on synthetic data the recovery of the planted markers: precision@20 of the consensus
top-20 up (down) genes against the target's planted up (down) markers; on the synthetic atlases also
``true_target``, what a perfect transition gets against the same held-out samples. The two-sample test (c2st) on
6-30 held-out target samples has a seed-sd of 0.08-0.30 even for a perfect transition, so the default is 5 seeds.
Wall time on 2 cores (AMD EPYC, 2026-12-06): default 14.5 min (with ``--patience`` 25, the default then),
``--compare tspg_paper`` 52.1 min, ``--quick`` 0.3 min; ``--compare tspg_paper --compare tspg_assign_nearest`` 68.2
min (the test suite ran beside it for 26 of them); with ``--patience`` 10 ``--compare tspg_patience25`` 21.5 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
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
from tspg._options import PAPER_LOSS  # noqa: E402
from tspg.data import Dataset, load_dataset, make_atlas, make_paired_atlas  # noqa: E402
from tspg.train import ClassifierConfig, GeneratorConfig, predict_logits, project, resolve_precision  # noqa: E402

log = logging.getLogger("quality")

METHODS = ("tspg", "tspg_paper", "tspg_fp32", "tspg_shrink_js", "tspg_shrink_none", "tspg_assign_nearest",
           "tspg_marginals_none", "tspg_cov_own",
           "tspg_patience25", "tspg_patience0",
           "tspg_prior_none", "tspg_0.1", "identity", "mean_shift", "optimal_transport", "nearest_target",
           "target_mean", "true_mean_shift", "true_target")
#: Reference row of the synthetic atlases: new draws from the atlas's own distribution of the target class, as many
#: as the perturbed samples: what a perfect transition would give against the same real held-out target samples.
TRUE_TARGET = "true_target"
#: Reference row of the synthetic atlases: each held-out sample moved by the difference of the atlas's true class
#: means (its target's and its own class's), i.e. the class-mean shift with no estimation error in the means.
TRUE_MEAN_SHIFT = "true_mean_shift"
#: New draws per class whose mean stands for the class's true mean (its sampling error, 0.5 / sqrt(2,000) = 0.011
#: in expression units at the atlases' noise SD, is a tenth of a 24-sample training mean's).
TRUE_MEAN_DRAWS = 2000
#: Metrics of a single sample's own move, which the true-target draws (not moves of the held-out samples) lack.
PER_SAMPLE = ("pearson_delta", "de_direction", "specificity", "l2", "genes_moved", "l1")
SHOWN = ("success_f", "success_logreg", "energy_distance", "energy_distance_genes", "c2st_auc", "mmd",
         "r2_mean_de20", "pearson_delta", "de_direction", "specificity", "l2", "genes_moved")
# metrics compared in the per-data-set sentence, with the direction that is better
COMPARED = {"success_logreg": "higher", "energy_distance": "lower", "energy_distance_genes": "lower",
            "c2st_auc": "closer to 0.5", "mmd": "lower", "r2_mean_de20": "higher", "pearson_delta": "higher",
            "de_direction": "higher", "specificity": "higher", "precision20_up": "higher",
            "precision20_down": "higher"}
#: The baselines the verdict compares TSPG with (identity makes no transition; tspg_0.1 is TSPG itself).
BASELINES = ("mean_shift", "optimal_transport", "nearest_target", "target_mean")


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
        return Dataset(atlas.gem, atlas.labels.astype(str)), atlas.markers, None, atlas.draw
    return load


def _paired(**kw) -> object:
    def load():
        atlas = make_paired_atlas(**kw)
        return Dataset(atlas.gem, atlas.labels.astype(str)), atlas.markers, atlas.true_delta, atlas.draw
    return load


def _leukemia():
    d = SHARED / "leukemia"
    return load_dataset(d / "Leukemia_hgu95av2.trim.gct", d / "Leukemia.cls"), None, None, None


def _pbmc():
    return (load_dataset(SHARED / "pbmc68k" / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels", use_raw=True),
            None, None, None)


def cases(quick: bool) -> list[Case]:
    """The benchmark's data sets (smaller ones in quick mode)."""
    if quick:
        return [Case("atlas_quick", "4 classes x 200 genes x 40 samples, markers +1.5", "Liver",
                     _atlas(n_classes=4, n_genes=200, samples_per_class=40, seed=0)),
                Case("atlas_quick_imbalanced", "5 classes x 300 genes, 10-80 samples per class", "Lung",
                     _atlas(n_classes=5, n_genes=300, samples_per_class=[80, 40, 20, 10, 60], seed=1)),
                Case("atlas_quick_paired", "60 individuals in 2 states x 300 genes, individual-specific response",
                     "Tumour", _paired(n_individuals=60, n_genes=300, seed=2))]
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
        Case("atlas_paired", "150 individuals observed as Normal and Tumour x 500 genes; the Tumour state amplifies "
             "each individual's own activity of 8 of 12 gene programs (x3), so each sample's true transition is "
             "known and differs within the class", "Tumour", _paired(n_individuals=150, n_genes=500, seed=6)),
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


#: Other generator settings a run can add beside the defaults (``--compare``), as GeneratorConfig overrides.
VARIANTS = {
    # tspg 0.1's defaults: the paper's loss terms (L1 to one target draw per sample, D on every class, random
    # initialisation) with tspg's measured weights (kappa 5, w_td 10, w_norm 1/sqrt(genes)) and the margin rule
    "tspg_0.1": {"td_loss": "draw", "disc_real": "all", "checkpoint": "margin", "zero_init": False, "w_ind": 0.0,
                 "td_smoothing": 0.0, "prior": "none", "patience": 0},
    # the defaults without the transport prior (--prior none): G learns the whole perturbation (the old default)
    "tspg_prior_none": {"prior": "none", "patience": 0},
    # early stopping after 25 epochs without a clear validation gain (the default before 10, 2026-12-06)
    "tspg_patience25": {"patience": 25},
    # the defaults without early stopping: every one of the epochs run (the old default)
    "tspg_patience0": {"patience": 0},
    # the defaults with the plain (unshrunk) transport prior (--prior-shrink none): the default before 0.4
    "tspg_shrink_none": {"prior_shrink": "none"},
    # the defaults with the per-gene James-Stein shrinkage of the prior (--prior-shrink js) instead of empirical Bayes
    "tspg_shrink_js": {"prior_shrink": "js"},
    # the defaults with each class's own covariance in the prior (--prior-covariance own): the default before 0.5
    "tspg_cov_own": {"prior_covariance": "own"},
    # the defaults with the prior's class of each sample by the nearest centroid (--prior-assign nearest): the
    # default before 0.6
    "tspg_assign_nearest": {"prior_assign": "nearest"},
    # the paper's loss (--paper-loss): L1 to one target draw per sample, D on every class, random initialisation,
    # every weight 1, kappa 0, no prior, every epoch
    "tspg_paper": dict(PAPER_LOSS),
    # the defaults with the generator in fp32 (--precision fp32) where the default (auto) is bf16
    "tspg_fp32": {"precision": "fp32"},
    # the defaults with the prior's map alone (--prior-marginals none): no marginal maps of zero-inflated genes,
    # the default before 2026-12-07's fourteenth session
    "tspg_marginals_none": {"prior_marginals": "none"},
}
VARIANT_TEXT = {"tspg_0.1": "tspg 0.1's defaults, the paper's loss terms with tspg's weights",
                "tspg_prior_none": "the defaults without the transport prior (`--prior none`): G learns the whole "
                                   "perturbation",
                "tspg_patience25": "the defaults with early stopping after 25 epochs (`--patience 25`, the default "
                                   "before 10)",
                "tspg_patience0": "the defaults without early stopping (`--patience 0`): every epoch run",
                "tspg_shrink_none": "the defaults with the plain transport prior (`--prior-shrink none`), "
                                    "the default before the per-gene shrinkage",
                "tspg_shrink_js": "the defaults with the per-gene James-Stein shrinkage of the prior "
                                  "(`--prior-shrink js`) instead of empirical Bayes",
                "tspg_cov_own": "the defaults with each class's own covariance in the prior "
                                "(`--prior-covariance own`), the default before the blend",
                "tspg_assign_nearest": "the defaults with each sample moved by the prior's map of its nearest "
                                       "class centroid (`--prior-assign nearest`), the default before the labels",
                "tspg_paper": "the paper's loss (`--paper-loss`: every weight 1, kappa 0, the L1 distance to one "
                              "target draw per sample, D on every class, random initialisation, no prior, every "
                              "epoch)",
                "tspg_fp32": "the defaults with the generator trained in fp32 (`--precision fp32`)",
                "tspg_marginals_none": "the defaults with the prior's map alone (`--prior-marginals none`): no "
                                       "marginal maps of the target's zero-inflated genes, the default before"}


def run_case(case: Case, seed: int, quick: bool, variants: tuple[str, ...] = ()) -> tuple[pd.DataFrame, dict]:
    """Train, perturb, run the baselines and score everything on one data set.

    One classifier; one generator with the defaults (method ``tspg``) and one per variant of :data:`VARIANTS`
    (method named after it), all on the same split and scored on the same held-out samples.
    """
    t0 = time.perf_counter()
    dataset, markers, true_delta, draw = case.load()
    cc = ClassifierConfig(epochs=10) if quick else ClassifierConfig()
    base = {**({"epochs": 5} if quick else {}), **case.generator}
    model = TSPG(cc, GeneratorConfig(**base), seed=seed, progress=False)
    model.fit_classifier(dataset)
    t1 = time.perf_counter()
    test = model.split.index[model.split == "test"]
    tspg_methods, summaries, gen_s = {}, {}, {}
    for name in ("tspg", *variants):
        t = time.perf_counter()
        model.generator_config = GeneratorConfig(**{**base, **VARIANTS.get(name, {})})
        model.fit_generator(dataset, case.target)
        gen_s[name] = time.perf_counter() - t
        tspg_methods[name] = model.perturb(dataset.gem.loc[test], case.target,
                                           labels=dataset.labels.loc[test]).x_adv_scaled
        summaries[name] = dict(model.generator_summaries[case.target])
    t2 = time.perf_counter()
    split = model.split
    train = split.index[split == "train"]
    x_train, y_train = model.scale(dataset.gem.loc[train]), dataset.labels.loc[train].astype(str).to_numpy()
    x_test, y_test = model.scale(dataset.gem.loc[test]), dataset.labels.loc[test].astype(str).to_numpy()
    classes = np.asarray(model.classes, dtype=object)

    def classify(v):
        return classes[predict_logits(model.classifier, v).argmax(1).numpy()]

    refs = tl.fit_references(x_train, y_train, classes=list(model.classes), seed=seed)
    tseed = model.target_seed(case.target)
    methods = {**tspg_methods, **tl.perturb_baselines(x_train, y_train, x_test, y_test, case.target, seed=tseed)}
    delta = None
    if true_delta is not None:  # each held-out sample's own true transition, in scaled units
        delta = true_delta.loc[test].to_numpy(np.float64) / model.scaler.data_range.astype(np.float64)
    others = y_test != case.target
    if delta is not None:  # a perfect transition: each held-out sample moved by its own true transition
        methods[TRUE_TARGET] = np.where(others[:, None], x_test + delta, x_test).astype(np.float32)
    elif draw is not None:  # a perfect transition: new draws of the target, in place of the held-out non-target rows
        new = x_test.copy()
        new[others] = model.scale(draw(case.target, int(others.sum()), seed=10_000 + seed))
        methods[TRUE_TARGET] = new
    if draw is not None:  # the mean shift with the atlas's true class means (no estimation error)
        true_mean = {c: model.scale(draw(c, TRUE_MEAN_DRAWS, seed=20_000 + i)).mean(0, dtype=np.float64)
                     for i, c in enumerate(sorted(set(y_test)))}
        shift = np.stack([true_mean[case.target] - true_mean[c] for c in y_test])
        methods[TRUE_MEAN_SHIFT] = tl.clip_perturbed(x_test, (x_test + shift).astype(np.float32))
    frame = tl.evaluate(refs, x_test, y_test, case.target, methods, classify=classify, seed=tseed, true_delta=delta)
    frame = frame[frame["source"] == "all"].drop(columns="source").set_index("method")
    if TRUE_TARGET in frame.index and delta is None:  # new draws are not moves of the held-out samples
        frame.loc[TRUE_TARGET, [c for c in PER_SAMPLE if c in frame.columns]] = np.nan
    # the c2st of real samples: every target training sample against the held-out ones, in the same PCA space
    frame.loc["real_target_train", "c2st_auc"] = tl.c2st_auc(
        refs.z_train[y_train == case.target], project(refs.pca, x_test[y_test == case.target]), seed=tseed)
    if markers is not None:
        for m, x_adv in methods.items():
            if m in (TRUE_TARGET, TRUE_MEAN_SHIFT):
                continue
            p_expr = model.scaler.inverse_transform_delta((x_adv - x_test)[others])
            top = _consensus(p_expr, model.genes, y_test[others])
            for d in ("up", "down"):
                planted = set(markers[case.target][d])
                if planted:
                    frame.loc[m, f"precision20_{d}"] = len(planted & set(top[d])) / 20
    clf = model.classifier_metrics(dataset)
    info = {"samples": dataset.gem.shape[0], "genes": dataset.gem.shape[1], "classes": len(model.classes),
            "classifier_accuracy": clf["accuracy"], "n_test": clf["n_test"],
            "classifier_s": t1 - t0, "generator_s": gen_s["tspg"], "variant_s": t2 - t1 - gen_s["tspg"],
            "generator_s_each": gen_s, "max_epochs": model.generator_config.epochs,
            "total_s": time.perf_counter() - t0, "generator": summaries["tspg"], "summaries": summaries,
            "history": model.generator_histories[case.target]}
    return frame, info


def _fmt(v: float) -> str:
    if pd.isna(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _cell(mean: float, sd: float) -> str:
    if pd.isna(mean):
        return "–"
    return _fmt(mean) + ("" if pd.isna(sd) else f" ± {_fmt(sd)}")


def _badness(value: float, better: str) -> float:
    """``value`` as a score where lower is better (``better``: a direction of ``COMPARED``)."""
    return -value if better == "higher" else abs(value - 0.5) if better == "closer to 0.5" else value


def verdict(mean: pd.DataFrame, sd: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """One sentence over seed means: the metrics where TSPG is best (ties within one TSPG seed-sd go to TSPG)
    and those where a baseline is better by more than that.

    ``runs`` (every seed's rows, index ``(run, method)``): a metric better nearer 0.5 is ranked by each seed's
    distance from 0.5, averaged (a mean of 0.2 and 0.8 is not 0.5's indistinguishable); without it, by the mean's.
    """
    wins, losses = [], []
    for metric, better in COMPARED.items():
        if metric not in mean.columns or "tspg" not in mean.index or pd.isna(mean.loc["tspg", metric]):
            continue
        others = mean.loc[[m for m in BASELINES if m in mean.index], metric].dropna()
        if others.empty:
            continue
        if runs is not None and better == "closer to 0.5" and metric in runs.columns:
            bad = (runs[metric] - 0.5).abs().groupby(level="method").mean()
        else:
            bad = mean[metric].map(lambda v, d=better: _badness(v, d))
        best = bad.reindex(others.index).idxmin()
        t, b = mean.loc["tspg", metric], others[best]
        tol = 0.0 if pd.isna(sd.loc["tspg", metric]) else sd.loc["tspg", metric]
        if bad["tspg"] <= bad[best] + tol + 1e-9:
            wins.append(metric)
        else:
            losses.append(f"{metric} ({best} {_fmt(b)} vs TSPG {_fmt(t)})")
    return ("TSPG is best, or within one seed-sd of the best baseline, on " + (", ".join(wins) if wins else
            "no compared metric") + "; **a baseline is better** on " + (", ".join(losses) if losses else
            "no compared metric") + ".")


def criteria(mean: pd.DataFrame, sd: pd.DataFrame, classifier_accuracy: float) -> list[tuple[str, bool]]:
    """The realism issue's 'done when' checks on one data set (seed means; one seed-sd is TSPG's)."""
    out = []
    ref = [m for m in ("mean_shift", "optimal_transport") if m in mean.index]
    for metric in ("energy_distance", "energy_distance_genes"):
        best = mean.loc[ref, metric].min()
        tol = sd.loc["tspg", metric] if not pd.isna(sd.loc["tspg", metric]) else 0.0
        out.append((f"{metric} <= best of mean_shift/optimal_transport + 1 sd ({_fmt(mean.loc['tspg', metric])} vs "
                    f"{_fmt(best)} + {_fmt(tol)})", bool(mean.loc["tspg", metric] <= best + tol + 1e-12)))
    c2 = mean.loc["tspg", "c2st_auc"]
    real = mean.loc["real_target_train", "c2st_auc"] if "real_target_train" in mean.index else float("nan")
    oracle = (f", the mean shift with the atlas's true class means {_fmt(mean.loc[TRUE_MEAN_SHIFT, 'c2st_auc'])}"
              if TRUE_MEAN_SHIFT in mean.index else "")
    out.append((f"c2st_auc <= 0.6 ({_fmt(c2)}; mean_shift {_fmt(mean.loc['mean_shift', 'c2st_auc'])}{oracle}, "
                f"real target training samples {_fmt(real)})", bool(c2 <= 0.6)))
    if TRUE_TARGET in mean.index:  # what a perfect transition gives against the same held-out samples
        t, tol = mean.loc[TRUE_TARGET], sd.loc["tspg"]
        for metric in ("energy_distance", "energy_distance_genes", "c2st_auc"):
            out.append((f"{metric} within 1 sd of the true target draws' ({_fmt(mean.loc['tspg', metric])} vs "
                        f"{_fmt(t[metric])} + {_fmt(tol[metric])})",
                        bool(mean.loc["tspg", metric] <= t[metric] + (0 if pd.isna(tol[metric]) else tol[metric])
                             + 1e-12)))
    if classifier_accuracy >= 0.9:
        for metric in ("success_f", "success_logreg"):
            recall = mean.loc["real_target_train", metric] if "real_target_train" in mean.index else float("nan")
            known = "" if pd.isna(recall) else f"; real held-out target samples {_fmt(recall)}"
            out.append((f"{metric} >= 0.95 ({_fmt(mean.loc['tspg', metric])}{known})",
                        bool(mean.loc["tspg", metric] >= 0.95)))
    for d in ("up", "down"):
        col = f"precision20_{d}"
        if col in mean.columns and not pd.isna(mean.loc["tspg", col]):
            ms = mean.loc["mean_shift", col]
            out.append((f"{col} not below mean_shift's by > 0.05 ({_fmt(mean.loc['tspg', col])} vs {_fmt(ms)})",
                        bool(mean.loc["tspg", col] >= ms - 0.05 - 1e-12)))
    if "tspg_patience0" in mean.index:  # early stopping must not cost realism or success (speed issue)
        for metric in ("success_f", "energy_distance", "energy_distance_genes", "c2st_auc", "mmd"):
            a, b = mean.loc["tspg", metric], mean.loc["tspg_patience0", metric]
            tol = float(np.nanmax([sd.loc["tspg", metric], sd.loc["tspg_patience0", metric], 0.0]))
            worse = b - a if metric == "success_f" else a - b
            out.append((f"{metric} no worse than every epoch's (`tspg_patience0`) by > 1 sd ({_fmt(a)} vs "
                        f"{_fmt(b)}, sd {_fmt(tol)})", bool(worse <= tol + 1e-12)))
    if "tspg_shrink_none" in mean.index:  # the shrunk prior against the plain one (realism issue)
        for metric in ("success_f", "energy_distance", "energy_distance_genes", "c2st_auc"):
            a, b = mean.loc["tspg", metric], mean.loc["tspg_shrink_none", metric]
            tol = float(np.nanmax([sd.loc["tspg", metric], sd.loc["tspg_shrink_none", metric], 0.0]))
            worse = b - a if metric == "success_f" else a - b
            out.append((f"{metric} no worse than the plain prior's (`tspg_shrink_none`) by > 1 sd ({_fmt(a)} vs "
                        f"{_fmt(b)}, sd {_fmt(tol)})", bool(worse <= tol + 1e-12)))
    if "specificity" in mean.columns and not pd.isna(mean.loc["tspg", "specificity"]):
        out.append((f"specificity above mean_shift's ({_fmt(mean.loc['tspg', 'specificity'])} vs "
                    f"{_fmt(mean.loc['mean_shift', 'specificity'])})",
                    bool(mean.loc["tspg", "specificity"] > mean.loc["mean_shift", "specificity"])))
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_results(path: Path, results: dict[str, list[tuple[pd.DataFrame, dict]]], cases_: list[Case],
                  seeds: list[int], wall: float, quick: bool, jobs: int, variants: tuple[str, ...],
                  extra: str = "") -> None:
    import sklearn
    import torch

    flags = (" --quick" if quick else "") + (f" --seeds {len(seeds)}" if len(seeds) != (1 if quick else 5) else "")
    flags += "".join(f" --compare {v}" for v in variants) + extra
    lines = ["# Quality benchmark: TSPG against baselines, with known truth", "",
             f"Regenerate: `python benchmarks/quality.py{flags}` "
             f"({'quick mode: few epochs, not meaningful' if quick else 'default settings'}). "
             f"Date {dt.date.today().isoformat()}, seeds {', '.join(map(str, seeds))}; CPU {_cpu()}, "
             f"{os.cpu_count()} cores, {jobs} worker process(es) of 1 torch thread each; python "
             f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, scikit-learn "
             f"{sklearn.__version__}; the default generator's precision `auto` is "
             f"{resolve_precision('auto', 'cpu')} on this CPU (f: fp32). Wall time {wall / 60:.1f} min.", "",
             "Each data set and seed: one stratified split (20% held out, 10% of the rest for validation), f, and "
             "one generator with tspg's default settings (`tspg`)"
             + (" and one per compared setting (" + "; ".join(f"`{v}`: {VARIANT_TEXT[v]}" for v in variants)
                + ")" if variants else "")
             + "; the baselines on the same held-out samples (all but the target class), and every metric on "
             "those samples. Cells are the mean ± sd over seeds (the seed changes the split, f and G). "
             "`real_target_train` is the floor (real target training samples against held-out target samples, "
             "size-matched; its c2st_auc: every target training sample against the held-out ones, which the "
             "PCA, fitted on the training part, tells apart where samples are few for the genes; its success_f "
             "and success_logreg: the share of the real held-out target samples f and the logistic regression "
             "call the target, the success a perfect transition would have); "
             "`target_mean` puts every sample on the target's training mean (pure collapse). `true_target` "
             "(synthetic atlases only) is what a perfect transition would give: new draws from the atlas's own "
             "distribution of the target class, as many as the perturbed samples (on the paired atlas: each "
             "held-out sample moved by its own true transition), scored against the same real held-out target "
             "samples (its c2st_auc is the test's own noise on those few samples, not 0.5); `true_mean_shift` "
             "(synthetic atlases) moves each held-out sample by the difference of the atlas's true class means "
             "(means of 2,000 new draws per class): the class-mean shift without the estimation error of means "
             "learnt from the training samples, which every method has. "
             "Success counts only samples the classifier did not already call the target. energy_distance and "
             "mmd are in the PCA space of the training part (50 components), energy_distance_genes in the scaled "
             "gene space; c2st_auc is the cross-validated AUC of a logistic regression (coordinates and their "
             "squares) telling perturbed from real held-out target samples in the PCA space (0.5: "
             "indistinguishable). precision20: share of the consensus top-20 up (down) perturbed genes that are "
             "the target's planted markers (synthetic data). specificity: R^2 of each sample's perturbation "
             "against its own known transition beyond the mean transition (paired atlas only).", ""]
    summary = []
    for case in cases_:
        runs = results.get(case.name)
        if not runs:
            continue
        frames = [f for f, _ in runs]
        allf = pd.concat(frames, keys=range(len(frames)), names=["run", "method"])
        mean = allf.groupby(level="method", sort=False).mean()
        sd = allf.groupby(level="method", sort=False).std(ddof=1) if len(frames) > 1 else mean * np.nan
        # tspg, then any compared setting METHODS does not list, then the rest in METHODS' order
        listed = [m for m in (*METHODS, "real_target_train") if m in mean.index]
        order = [*listed[:1], *[m for m in mean.index if m not in listed], *listed[1:]]
        mean, sd = mean.loc[order], sd.reindex(order)
        cols = [c for c in (*SHOWN, "precision20_up", "precision20_down") if c in mean.columns
                and mean[c].notna().any()]
        info = [i for _, i in runs]
        acc = float(np.mean([i["classifier_accuracy"] for i in info]))
        best_epochs = ", ".join(f"{i['generator'].get('best_epoch')} of {i['generator'].get('epochs_trained')}"
                                for i in info)
        lines += [f"## {case.name}", "", f"{case.description}; target **{case.target}**. {info[0]['samples']} "
                  f"samples, {info[0]['genes']} genes, {info[0]['classes']} classes; {len(runs)} seed(s); classifier "
                  f"held-out accuracy {acc:.3f} (mean); tspg's best epoch per seed {best_epochs} "
                  f"(at most {info[0].get('max_epochs')}); mean time: classifier "
                  f"{np.mean([i['classifier_s'] for i in info]):.0f} s, generator "
                  f"{np.mean([i['generator_s'] for i in info]):.0f} s"
                  + "".join(f" ({v} {np.mean([i['generator_s_each'][v] for i in info]):.0f} s)"
                            for v in info[0].get("generator_s_each", {}) if v != "tspg")
                  + ", all "
                  f"{np.mean([i['total_s'] for i in info]):.0f} s.",
                  "", "| method | n | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for m in order:
            lines.append(f"| {m} | {mean.loc[m, 'n']:.0f} | " + " | ".join(_cell(mean.loc[m, c], sd.loc[m, c])
                                                                       for c in cols) + " |")
        lines += ["", verdict(mean, sd, allf), ""]
        checks = criteria(mean, sd, acc)
        lines += ["Done-when checks: " + "; ".join(f"{'met' if ok else '**not met**'}: {text}" for text, ok in checks)
                  + ".", ""]
        summary.append((case.name, checks))
    if summary:
        lines += ["## Summary of the done-when checks", "", "| data set | met | not met |", "|---|---|---|"]
        for name, checks in summary:
            lines.append(f"| {name} | {sum(ok for _, ok in checks)} of {len(checks)} | "
                         + ("; ".join(t.split(' (')[0] for t, ok in checks if not ok) or "–") + " |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _job(name: str, seed: int, quick: bool, variants: tuple[str, ...]) -> tuple[str, int, pd.DataFrame, dict]:
    import torch

    torch.set_num_threads(1)
    logging.getLogger("tspg").setLevel(logging.WARNING)
    case = next(c for c in cases(quick) if c.name == name)
    frame, info = run_case(case, seed, quick, variants)
    info.pop("history", None)
    info["seed"] = seed
    return name, seed, frame, info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data and few epochs (a smoke test)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 per data set (default 5; 1 with --quick)")
    parser.add_argument("--only", nargs="*", help="run only these data sets (by name)")
    parser.add_argument("--compare", action="append", default=[], choices=sorted(VARIANTS),
                        help="also train a generator with these settings on each split (e.g. tspg_0.1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes, each with 1 torch thread (default: 2, or 1 on a 1-core machine)")
    parser.add_argument("--out", type=Path, help="results file (default: benchmarks/results/quality[_quick].md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tspg").setLevel(logging.WARNING)
    out = args.out or REPO / "benchmarks" / "results" / ("quality_quick.md" if args.quick else "quality.md")
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 5)))
    variants = tuple(dict.fromkeys(args.compare))
    chosen = [c for c in cases(args.quick) if not args.only or c.name in args.only]
    # the command's other options, for the file's "Regenerate" line
    extra = (f" --only {' '.join(args.only)}" if args.only else "") + (
        f" --out {os.path.relpath(args.out, REPO)}" if args.out else "")
    # the longest data sets first, so that the workers finish together
    jobs = [(c.name, s) for s in seeds for c in chosen]
    start = time.perf_counter()
    results: dict[str, list] = {}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_job, name, seed, args.quick, variants) for name, seed in jobs]
        for fut in as_completed(futures):
            name, seed, frame, info = fut.result()
            results.setdefault(name, []).append((frame, info))
            results[name].sort(key=lambda r: r[1]["seed"])
            log.info("%s seed %d: %.0f s; tspg success f %.3f; energy %.3g (mean shift %.3g), genes %.3g (%.3g); "
                     "c2st %.3f", name, seed, info["total_s"], frame.loc["tspg", "success_f"],
                     frame.loc["tspg", "energy_distance"], frame.loc["mean_shift", "energy_distance"],
                     frame.loc["tspg", "energy_distance_genes"], frame.loc["mean_shift", "energy_distance_genes"],
                     frame.loc["tspg", "c2st_auc"])
            write_results(out, results, chosen, seeds, time.perf_counter() - start, args.quick, args.jobs, variants,
                          extra)
    log.info("wrote %s (%.1f min)", out, (time.perf_counter() - start) / 60)


if __name__ == "__main__":
    main()
