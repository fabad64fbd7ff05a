"""Every target at once: the conditional generator G(x, t) against one generator per target, same data, same run.

One command:  python benchmarks/conditional.py [--seeds 3] [--quick] [--out PATH]
W3 scale:     python benchmarks/conditional.py --w3   (``conditional_w3.md``; about 45 min on 2 cores)
Real data:    python benchmarks/conditional.py --pbmc68k [--seeds 3]   (``conditional_pbmc68k.md``)

On a synthetic tissue atlas of 26 classes x 520 genes x 20 samples per class (the issue's "about 500 genes and 20
samples per class"; 10 up and 10 down markers per class), per seed: one classifier (``tspg.TSPG``, default
settings), then a per-target generator for EVERY class (each timed), then one conditional generator for every
class (``TSPG.fit_conditional``, timed) on the same classifier and split. Both are evaluated on the held-out
samples of every target (``tspg.workflow._evaluation.evaluate_targets`` with the mean-shift baseline): success under
f and under an independent logistic regression, energy distance to real held-out target samples in PCA and in the
scaled gene space, and the two-sample test's AUC. Writes ``benchmarks/results/conditional.md`` (``--quick``: 8
classes, 1 seed, ``conditional_quick.md``) with the CPU model and flags, mean +- sd over seeds and the done-when
checks of issue 11:

- conditional: held-out accuracy >= 0.95 and logistic-regression success >= 0.9 for every target;
- conditional wall time <= 3x that of ONE per-target generator (their mean);
- conditional realism (energy distances, c2st; mean over targets) not worse than per-target by more than one
  seed-sd.

``--w3``: speed.py's W3 (11,688 samples x 4,386 genes x 53 classes), one seed: the classifier, ONE per-target
generator (the first class) and the conditional generator for all 53 targets, each timed; per target the held-out
figures of the conditional generator (and of the mean shift); the check "all 53 targets in <= 1 hour".
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import speed  # noqa: E402  (machine facts)

from tspg import TSPG  # noqa: E402
from tspg._io import atomic_write_text  # noqa: E402
from tspg.data import load_dataset, make_atlas  # noqa: E402
from tspg.workflow._evaluation import evaluate_targets  # noqa: E402

log = logging.getLogger("bench")
FIGURES = ("success_f", "success_logreg", "energy_distance", "energy_distance_genes", "c2st_auc")
LOWER_BETTER = ("energy_distance", "energy_distance_genes", "c2st_auc")


def run_seed(seed: int, n_classes: int, folder: Path) -> dict:
    """One seed: per-target generators for every class, then the conditional one; their times and figures."""
    atlas = make_atlas(n_classes=n_classes, n_genes=20 * n_classes, samples_per_class=20, n_markers=10, seed=seed)
    paths = atlas.write(folder / f"atlas{seed}")
    ds = load_dataset(paths["data"], paths["labels"])
    model = TSPG(seed=seed, progress=False)
    t0 = time.perf_counter()
    model.fit_classifier(ds)
    t_clf = time.perf_counter() - t0
    per_target_s = []
    for t in model.classes:
        t0 = time.perf_counter()
        model.fit_generator(ds, t)
        per_target_s.append(time.perf_counter() - t0)
    epochs_pt = [model.generator_summaries[t]["epochs_trained"] for t in model.classes]
    best_pt = [model.generator_summaries[t]["best_epoch"] for t in model.classes]
    frames_pt = evaluate_targets(model, ds, model.classes, baselines=["mean_shift"])
    t0 = time.perf_counter()
    model.fit_conditional(ds, "all")
    t_cond = time.perf_counter() - t0
    summary = model.generator_summaries[model.classes[0]]
    frames_c = evaluate_targets(model, ds, model.classes, baselines=["mean_shift"])

    def table(frames: dict, method: str) -> pd.DataFrame:
        rows = {t: f[(f["source"] == "all") & (f["method"] == method)].iloc[0] for t, f in frames.items()}
        return pd.DataFrame({t: {k: float(r[k]) for k in FIGURES} for t, r in rows.items()}).T

    return {"seed": seed, "classifier_s": t_clf, "per_target_s": per_target_s, "conditional_s": t_cond,
            "epochs_per_target": epochs_pt, "best_per_target": best_pt, "epochs_conditional": summary["epochs_trained"],
            "best_conditional": summary["best_epoch"], "per_target": table(frames_pt, "tspg"),
            "conditional": table(frames_c, "tspg"), "mean_shift": table(frames_c, "mean_shift"),
            "classifier_accuracy": float(model.classifier_metrics(ds)["accuracy"])}


def run_w3() -> dict:
    """W3: ONE per-target generator and the conditional generator for all 53 targets, timed; held-out figures."""
    from tspg.data import Dataset

    a = speed.atlas(53, 4386, 11688)
    ds = Dataset(gem=a.gem, labels=a.labels.astype(str))
    del a
    model = TSPG(seed=0, progress=False)
    t0 = time.perf_counter()
    model.fit_classifier(ds)
    t_clf = time.perf_counter() - t0
    log.info("W3 classifier: %.0f s", t_clf)
    first = model.classes[0]
    t0 = time.perf_counter()
    model.fit_generator(ds, first)
    t_one = time.perf_counter() - t0
    one_summary = dict(model.generator_summaries[first])
    log.info("W3 one per-target generator: %.0f s", t_one)
    t0 = time.perf_counter()
    model.fit_conditional(ds, "all")
    t_cond = time.perf_counter() - t0
    log.info("W3 conditional generator, 53 targets: %.0f s", t_cond)
    t0 = time.perf_counter()
    frames = evaluate_targets(model, ds, model.classes, baselines=["mean_shift"])
    t_eval = time.perf_counter() - t0
    rows = {t: f[f["source"] == "all"].set_index("method") for t, f in frames.items()}
    return {"classifier_s": t_clf, "one_s": t_one, "one_summary": one_summary, "conditional_s": t_cond,
            "evaluate_s": t_eval, "summary": dict(model.generator_summaries[first]),
            "classifier_accuracy": float(model.classifier_metrics(ds)["accuracy"]),
            "tspg": pd.DataFrame({t: r.loc["tspg", list(FIGURES)] for t, r in rows.items()}).T.astype(float),
            "mean_shift": pd.DataFrame({t: r.loc["mean_shift", list(FIGURES)] for t, r in rows.items()}).T
            .astype(float)}


#: pbmc68k mode: the conditional generator with each setting, and the baselines (rows of its report).
PBMC_VARIANTS = {"conditional": {}, "conditional_unshrunk": {"prior_shrink": "none", "prior_covariance": "own"}}
PBMC_BASELINES = ("mean_shift", "optimal_transport")


def run_pbmc68k(seed: int) -> dict:
    """pbmc68k (700 cells x 765 genes, 10 cell types, every type a target): one classifier, then the conditional
    generator with the defaults and with the unshrunk prior (the default before), each timed; held-out figures
    per target."""
    from tspg.data import load_dataset as load
    from tspg.train import GeneratorConfig

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbmc68k"
    ds = load(shared / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels", use_raw=True)
    model = TSPG(seed=seed, progress=False)
    model.fit_classifier(ds)
    out = {"seed": seed, "classifier_accuracy": float(model.classifier_metrics(ds)["accuracy"])}
    for name, settings in PBMC_VARIANTS.items():
        model.generator_config = GeneratorConfig(**settings)
        t0 = time.perf_counter()
        model.fit_conditional(ds, "all")
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_best"] = model.generator_summaries[model.classes[0]]["best_epoch"]
        frames = evaluate_targets(model, ds, model.classes, baselines=list(PBMC_BASELINES))
        rows = {t: f[f["source"] == "all"].set_index("method") for t, f in frames.items()}
        out[name] = pd.DataFrame({t: r.loc["tspg", list(FIGURES)] for t, r in rows.items()}).T.astype(float)
        for b in PBMC_BASELINES:
            out[b] = pd.DataFrame({t: r.loc[b, list(FIGURES)] for t, r in rows.items()}).T.astype(float)
    out["real_recall"] = real_target_recall(model, ds)
    return out


def real_target_recall(model: TSPG, ds) -> dict[str, float]:
    """The share of each target's real held-out samples that f, and the evaluation's logistic regression, call
    that target, averaged over the targets: what a perfect transition's success would be under each."""
    from tspg import tl
    from tspg.train import predict_logits
    from tspg.workflow._evaluation import _part

    x_train, y_train, _ = _part(model, ds, "train")
    x_test, y_test, _ = _part(model, ds, "test")
    classes = np.asarray(model.classes, dtype=object)
    by_f = classes[predict_logits(model.classifier, x_test, device=model.device).argmax(1).numpy()]
    refs = tl.fit_references(x_train, y_train, classes=list(model.classes), seed=model.seed)
    by_lr = refs.classifiers["logreg"].predict(x_test)
    return {"success_f": float(np.mean([np.mean(by_f[y_test == t] == t) for t in model.classes])),
            "success_logreg": float(np.mean([np.mean(by_lr[y_test == t] == t) for t in model.classes]))}


def write_pbmc68k(path: Path, results: list[dict], info: dict, total_s: float) -> None:
    """The pbmc68k report: every figure as the mean over targets, then mean +- sd over seeds."""
    methods = [*PBMC_VARIANTS, *PBMC_BASELINES]
    lines = ["# Conditional generator on pbmc68k: every cell type a target", "",
             f"Written by `python benchmarks/conditional.py --pbmc68k --seeds {len(results)}` on "
             f"{time.strftime('%Y-%m-%d %H:%M')} in {total_s / 60:.1f} min. 10x PBMC 68k reduced (700 cells x 765 "
             "genes, `.raw`, 10 cell types; `../shared/data/pbmc68k`), tspg's default split; per seed one classifier "
             f"(held-out accuracy {_ms([r['classifier_accuracy'] for r in results])}), then one conditional "
             "generator for all 10 targets with the defaults (`conditional`) and with `prior_shrink=none "
             "prior_covariance=own` (`conditional_unshrunk`, the conditional prior before it was shrunk), on the same "
             "classifier and split. Each target's held-out samples of the other types are perturbed (`tspg.workflow."
             "_evaluation.evaluate_targets`, with their labels) and scored against its real held-out samples; "
             "figures are the mean over the 10 targets, then mean +- sd over seeds.", "",
             f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
             f"- Flags: {info['flags']}",
             f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}", "",
             "| method | " + " | ".join(FIGURES) + " | generator s | kept epoch per seed |",
             "| --- | " + " | ".join("---" for _ in FIGURES) + " | --- | --- |"]
    for m in methods:
        cells = [_ms([r[m][k].mean() for r in results]) for k in FIGURES]
        secs = _ms([r[f"{m}_s"] for r in results], 1) if m in PBMC_VARIANTS else "-"
        best = ", ".join(str(r[f"{m}_best"]) for r in results) if m in PBMC_VARIANTS else "-"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {secs} | {best} |")
    if all("real_recall" in r for r in results):
        cells = [_ms([r["real_recall"][k] for r in results]) if k in ("success_f", "success_logreg") else "-"
                 for k in FIGURES]
        lines.append("| real held-out target samples (recall) | " + " | ".join(cells) + " | - | - |")
        lines += ["", "The last row is the share of each target's own real held-out samples that f, and the "
                  "logistic regression, call that target (mean over the targets): the success a perfect transition "
                  "into the target's distribution would have. Success above it is bought by moving samples past "
                  "the real ones, into the region the classifiers are sure of."]
    last = results[-1]
    lines += ["", f"## Per target (seed {last['seed']})", "",
              "| target | " + " | ".join(f"{m} energy / c2st / success_f" for m in methods) + " |",
              "| --- | " + " | ".join("---" for _ in methods) + " |"]
    for t in last["conditional"].index:
        cells = [f"{last[m].loc[t, 'energy_distance']:.3f} / {last[m].loc[t, 'c2st_auc']:.3f} / "
                 f"{last[m].loc[t, 'success_f']:.3f}" for m in methods]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_w3(path: Path, r: dict, info: dict, total_s: float) -> None:
    """The W3 report."""
    tab, ms = r["tspg"], r["mean_shift"]
    hour = r["conditional_s"] <= 3600
    L = ["# Conditional generator on W3 (11,688 x 4,386, 53 classes): every target at once", "",
         f"Written by `python benchmarks/conditional.py --w3` on {info['date']} in {total_s / 60:.1f} min (load "
         f"before: {info['load_before']}); seed 0, default settings.", "",
         f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
         f"- Flags: {info['flags']}", f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}", "",
         "| step | seconds |", "| --- | --- |",
         f"| classifier (held-out accuracy {r['classifier_accuracy']:.3f}) | {r['classifier_s']:.0f} |",
         f"| ONE per-target generator ({r['one_summary']['epochs_trained']} epochs, kept "
         f"{r['one_summary']['best_epoch']}) | {r['one_s']:.0f} |",
         f"| 53 per-target generators, estimated as 53 x the one | {53 * r['one_s']:.0f} |",
         f"| ONE conditional generator for all 53 targets ({r['summary']['epochs_trained']} epochs, kept "
         f"{r['summary']['best_epoch']}) | {r['conditional_s']:.0f} |",
         f"| evaluation of the 53 targets (held-out samples, with the mean shift) | {r['evaluate_s']:.0f} |", "",
         f"- [{'x' if hour else ' '}] all 53 targets in <= 1 hour on this machine (generator training): "
         f"{r['conditional_s'] / 60:.1f} min, {'met' if hour else 'NOT met'}; "
         f"{53 * r['one_s'] / r['conditional_s']:.0f}x faster than 53 per-target generators would be.", "",
         "Held-out figures over the 53 targets (conditional generator; mean shift beside):", "",
         "| figure | conditional: mean | min | max | mean shift: mean |", "| --- | --- | --- | --- | --- |"]
    for k in FIGURES:
        L.append(f"| {k} | {tab[k].mean():.4f} | {tab[k].min():.4f} | {tab[k].max():.4f} | {ms[k].mean():.4f} |")
    L += ["", "| target | success_f | success_logreg | energy_distance | c2st_auc |", "| --- | --- | --- | --- | --- |"]
    L += [f"| {t} | {v['success_f']:.3f} | {v['success_logreg']:.3f} | {v['energy_distance']:.4f} | "
          f"{v['c2st_auc']:.3f} |" for t, v in tab.iterrows()]
    atomic_write_text(path, "\n".join(L) + "\n")


def _ms(values: list[float], digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


def write_report(path: Path, results: list[dict], info: dict, n_classes: int, total_s: float, quick: bool) -> bool:
    """The markdown report; returns whether every done-when check is met."""
    one = [float(np.mean(r["per_target_s"])) for r in results]
    cond = [r["conditional_s"] for r in results]
    ratio = [c / o for c, o in zip(cond, one, strict=True)]
    L = [f"# Conditional generator against one generator per target{' (QUICK mode)' if quick else ''}", "",
         f"Written by `python benchmarks/conditional.py --seeds {len(results)}{' --quick' if quick else ''}` on "
         f"{info['date']} in {total_s / 60:.1f} min "
         f"(load before: {info['load_before']}). Atlas: {n_classes} classes x {20 * n_classes} genes x 20 "
         "samples per class (split 0.7 / 0.1 / 0.2); default settings (per-target: `tspg run`'s; conditional: "
         "`--generator conditional`); every class is a target; held-out samples of other classes are perturbed.",
         "", f"- CPU: {info['cpu']}, {info['cores']} logical cores; torch threads {info['torch_threads']}",
         f"- Flags: {info['flags']}", f"- Python {info['python']}, torch {info['torch']}, tspg {info['tspg']}", "",
         "## Time (seconds; mean ± sd over seeds)", "",
         "| | value |", "| --- | --- |",
         f"| classifier (held-out accuracy {_ms([r['classifier_accuracy'] for r in results])}) | "
         f"{_ms([r['classifier_s'] for r in results], 1)} |",
         f"| ONE per-target generator (mean over the {n_classes} targets) | {_ms(one, 1)} |",
         f"| all {n_classes} per-target generators | {_ms([sum(r['per_target_s']) for r in results], 1)} |",
         f"| one conditional generator for all {n_classes} targets | {_ms(cond, 1)} |",
         f"| conditional / ONE per-target | {_ms(ratio, 2)} |",
         f"| epochs run: per-target (mean) / conditional | "
         f"{np.mean([np.mean(r['epochs_per_target']) for r in results]):.1f} / "
         f"{np.mean([r['epochs_conditional'] for r in results]):.1f} |",
         f"| kept epoch: per-target (mean) / conditional | "
         f"{np.mean([np.mean(r['best_per_target']) for r in results]):.1f} / "
         f"{np.mean([r['best_conditional'] for r in results]):.1f} |", "",
         "## Held-out figures (mean over targets, then mean ± sd over seeds)", "",
         "| method | " + " | ".join(FIGURES) + " |", "| --- |" + " --- |" * len(FIGURES)]
    means = {}
    for method in ("per_target", "conditional", "mean_shift"):
        per_seed = {k: [float(r[method][k].mean()) for r in results] for k in FIGURES}
        means[method] = per_seed
        L.append(f"| {method.replace('_', '-') if method != 'mean_shift' else 'mean_shift'} | "
                 + " | ".join(_ms(per_seed[k]) for k in FIGURES) + " |")
    worst = {k: min(float(r["conditional"][k].min()) for r in results) for k in ("success_f", "success_logreg")}
    L += ["", f"Lowest per-target figure of the conditional generator over every target and seed: success_f "
          f"{worst['success_f']:.3f}, success_logreg {worst['success_logreg']:.3f}.", "", "## Done when (issue 11)",
          ""]
    checks = [(f"conditional success_f >= 0.95 for every target (lowest {worst['success_f']:.3f})",
               worst["success_f"] >= 0.95),
              (f"conditional success_logreg >= 0.9 for every target (lowest {worst['success_logreg']:.3f})",
               worst["success_logreg"] >= 0.9),
              (f"conditional wall time <= 3x ONE per-target generator ({np.mean(ratio):.2f}x)",
               float(np.mean(ratio)) <= 3.0)]
    for k in LOWER_BETTER:
        c, p = np.asarray(means["conditional"][k]), np.asarray(means["per_target"][k])
        sd = float(p.std(ddof=1)) if len(p) > 1 else 0.0
        checks.append((f"conditional {k} {c.mean():.4f} <= per-target {p.mean():.4f} + 1 sd ({sd:.4f})",
                       c.mean() <= p.mean() + sd))
    L += [f"- [{'x' if ok else ' '}] {text}: {'met' if ok else 'NOT met'}" for text, ok in checks]
    L += ["", "## Per target (last seed)", "",
          "| target | per-target success_f | conditional success_f | conditional success_logreg | "
          "per-target energy | conditional energy | per-target c2st | conditional c2st |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    last = results[-1]
    for t in last["conditional"].index:
        p, c = last["per_target"].loc[t], last["conditional"].loc[t]
        L.append(f"| {t} | {p['success_f']:.3f} | {c['success_f']:.3f} | {c['success_logreg']:.3f} | "
                 f"{p['energy_distance']:.4f} | {c['energy_distance']:.4f} | {p['c2st_auc']:.3f} | "
                 f"{c['c2st_auc']:.3f} |")
    atomic_write_text(path, "\n".join(L) + "\n")
    return all(ok for _, ok in checks)


def main() -> int:
    """Run the benchmark and write its report."""
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="8 classes, 1 seed (a smoke run, not the figures)")
    ap.add_argument("--w3", action="store_true", help="W3 (11,688 x 4,386, 53 classes): all 53 targets at once")
    ap.add_argument("--pbmc68k", action="store_true",
                    help="pbmc68k, every cell type a target: the conditional generator's settings and the baselines")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("tspg", "tspg.library"):
        logging.getLogger(name).setLevel(logging.WARNING)
    n_classes, seeds = (8, 1) if args.quick else (26, args.seeds)
    here = Path(__file__).resolve().parent / "results"
    out = args.out or here / ("conditional_quick.md" if args.quick else "conditional.md")
    info = speed.machine()
    began = time.perf_counter()
    if args.w3:
        r = run_w3()
        out = args.out or here / "conditional_w3.md"
        write_w3(out, r, info, time.perf_counter() - began)
        log.info("wrote %s", out)
        return 0
    if args.pbmc68k:
        rows = []
        for seed in range(args.seeds):
            rows.append(run_pbmc68k(seed))
            log.info("pbmc68k seed %d: conditional %.0f s", seed, rows[-1]["conditional_s"])
        out = args.out or here / "conditional_pbmc68k.md"
        write_pbmc68k(out, rows, info, time.perf_counter() - began)
        log.info("wrote %s", out)
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = run_seed(seed, n_classes, Path(tmp))
            log.info("seed %d: one per-target %.1f s, conditional %.1f s, lowest success_f %.3f", seed,
                     np.mean(r["per_target_s"]), r["conditional_s"], r["conditional"]["success_f"].min())
            results.append(r)
    ok = write_report(out, results, info, n_classes, time.perf_counter() - began, args.quick)
    log.info("wrote %s (%s)", out, "every check met" if ok else "some checks NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
