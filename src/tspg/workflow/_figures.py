"""The figures, AnnData export and report of a run folder (behind ``tspg run``, ``plot``, ``export``, ``report``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspg._io import atomic_write, write_table
from tspg._names import (
    CLASSIFIER_HISTORY,
    FIG_CLASSIFIER_HISTORY,
    FIG_HISTORY,
    FIG_PANEL,
    FIG_TSNE,
    H5AD,
    HISTORY,
    METRICS,
    PERTURBATIONS,
    PERTURBATIONS_SCALED,
    PERTURBED,
    PERTURBED_SCALED,
    PLOTS,
    PREDICTIONS,
    TSNE,
    heatmap_stem,
    target_dirname,
)
from tspg.data import Dataset, InputError
from tspg.model import TSPG
from tspg.workflow._run import read_predictions, read_run_table, source_classes

log = logging.getLogger(__name__)

PLOTS = PLOTS


@dataclass
class PlotSpec:
    """What to draw (the CLI's plot options)."""

    tsne_mode: str = "project"
    tsne_samples: int | None = 100
    tsne_classes: int | None = 10
    tsne_max_original: int | None = 3000
    heatmap_samples: list[str] | int = 3
    panel_sources: int = 4
    include_target: bool = False
    formats: tuple[str, ...] = ("png", "svg")
    skip: list[str] = field(default_factory=list)


def _read(folder: Path, name: str) -> pd.DataFrame:
    return read_run_table(folder / name, f"re-create it with 'tspg perturb {folder.parent}'", matrix=True,
                          index_col=0)


@dataclass
class TargetResults:
    """A target's perturbations read back from its folder, in scaled and original units."""

    target: str
    x_adv_scaled: pd.DataFrame
    p_scaled: pd.DataFrame
    x_adv_expr: pd.DataFrame
    p_expr: pd.DataFrame
    predictions: pd.DataFrame

    @property
    def sources(self) -> pd.Series:
        """Source class per perturbed sample: its label where known, else f's call before the perturbation."""
        return source_classes(self.predictions)

    @property
    def x_scaled(self) -> pd.DataFrame:
        """The original samples (scaled units): ``x_adv - P``."""
        return self.x_adv_scaled - self.p_scaled

    @property
    def x_expr(self) -> pd.DataFrame:
        """The original samples (original units)."""
        return self.x_adv_expr - self.p_expr


def read_target(out: Path, target: str) -> TargetResults:
    """Read a target's perturbation files from a run folder (after ``tspg perturb``)."""
    folder = out / target_dirname(target)
    names = [PERTURBED_SCALED, PERTURBATIONS_SCALED, PERTURBED, PERTURBATIONS, PREDICTIONS]
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise InputError(f"{folder} lacks {', '.join(missing)}; run 'tspg perturb {out} --target \"{target}\"' "
                         "first.")
    return TargetResults(target, *(_read(folder, n) for n in names[:4]), read_predictions(folder))


def target_means(model: TSPG, dataset: Dataset, target: str) -> tuple[np.ndarray, np.ndarray]:
    """mu_T: the target class's mean over the training part, in scaled and in original units."""
    train = model.split[(model.split == "train") & (dataset.labels.reindex(model.split.index) == target)].index
    scaled = model.scale(dataset.gem.loc[train])
    return scaled.mean(axis=0), model.scaler.inverse_transform(scaled).mean(axis=0)


def check_heatmap_samples(out: Path, targets: list[str], spec: PlotSpec) -> None:
    """Refuse named ``--heatmap-samples`` that a target did not perturb (before any slow work starts)."""
    if isinstance(spec.heatmap_samples, int):
        return
    for t in targets:
        path = out / target_dirname(t) / PREDICTIONS
        if path.exists():
            samples = pd.read_csv(path, sep="\t", usecols=[0], dtype=str).iloc[:, 0]
            _check_named(list(samples), spec.heatmap_samples, t)


def check_heatmap_names(samples: list[str], spec: PlotSpec, targets: list[str], hint: str = "") -> None:
    """Refuse named ``--heatmap-samples`` that are not among ``samples``, the samples the targets will perturb.

    ``hint`` ends the message (e.g. how to perturb other samples).
    """
    if not isinstance(spec.heatmap_samples, int):
        _check_named([str(s) for s in samples], spec.heatmap_samples, ", ".join(targets), hint)


def _check_named(samples: list[str], names: list[str], target: str, hint: str = "") -> None:
    unknown = [s for s in names if s not in set(samples)]
    if unknown:
        raise InputError(f"--heatmap-samples: {', '.join(unknown[:3])} not among the perturbed samples of "
                         f"'{target}' (e.g. {', '.join(samples[:3])}){hint}.")


def _heatmap_choice(res: TargetResults, spec: PlotSpec, rng: np.random.Generator) -> list[str]:
    samples = list(res.predictions.index)
    if isinstance(spec.heatmap_samples, int):
        # prefer samples not of the target class (their transition is the point)
        pool = [s for s, src in res.sources.items() if src != res.target] or samples
        n = min(spec.heatmap_samples, len(pool))
        return [pool[i] for i in np.sort(rng.choice(len(pool), n, replace=False))] if n else []
    _check_named(samples, spec.heatmap_samples, res.target)
    return list(spec.heatmap_samples)


def tsne_phase(model: TSPG, dataset: Dataset, res: TargetResults, spec: PlotSpec, seed: int) -> pd.DataFrame:
    """Compute the target's t-SNE map; return a long table (sample, kind, class, tsne1, tsne2)."""
    from tspg import tl

    sources = res.sources
    run_labels = dataset.labels.reindex(model.split.index).astype(str)
    classes, orig, pert = tl.choose_tsne_samples(run_labels, sources, res.target, spec.tsne_samples,
                                                 spec.tsne_classes, spec.tsne_max_original, seed,
                                                 include_target=spec.include_target)
    background = pd.DataFrame(model.scale(dataset.gem.loc[orig]), index=pd.Index(orig), columns=model.genes)
    x_pert = res.x_adv_scaled.loc[pert, model.genes]
    # originals of perturbed samples that are not in the map (e.g. external data) are placed into it as well
    outside = [s for s in pert if s not in set(orig) or res.predictions.loc[s, "part"] == "external"]
    x_out = res.x_scaled.loc[outside, model.genes]
    x_out.index = pd.Index([f"\0{s}" for s in outside])
    m = tl.tsne_map(background, pd.concat([x_pert, x_out]), mode=spec.tsne_mode, seed=seed)  # type: ignore[arg-type]
    before = m.original.reindex(pert)
    moved = m.perturbed.loc[[f"\0{s}" for s in outside]]
    before.loc[outside] = moved.to_numpy()
    rows = [pd.DataFrame({"sample": orig, "kind": "original", "class": run_labels.loc[orig].to_numpy(),
                          "tsne1": m.original["tsne1"].to_numpy(), "tsne2": m.original["tsne2"].to_numpy()}),
            pd.DataFrame({"sample": pert, "kind": "perturbed_before", "class": sources.loc[pert].to_numpy(),
                          "tsne1": before["tsne1"].to_numpy(), "tsne2": before["tsne2"].to_numpy()}),
            pd.DataFrame({"sample": pert, "kind": "perturbed", "class": sources.loc[pert].to_numpy(),
                          "tsne1": m.perturbed.loc[pert, "tsne1"].to_numpy(),
                          "tsne2": m.perturbed.loc[pert, "tsne2"].to_numpy()})]
    table = pd.concat(rows, ignore_index=True)
    table.attrs["classes"] = classes
    table.attrs["n_pcs"] = m.n_pcs
    return table


def plot_phase(model: TSPG, dataset: Dataset, out: Path, target: str, spec: PlotSpec) -> dict[str, list[str]]:
    """Draw every figure of one target into ``OUT/<target>/plots`` (and its t-SNE coordinates to tsne.tsv).

    Returns
    -------
    Figure names (file stems relative to the run folder) per kind: ``tsne``, ``heatmap``, ``heatmap_expr``,
    ``panel``, ``history``.
    """
    from tspg import pl

    folder = out / target_dirname(target)
    plots = folder / PLOTS
    res = read_target(out, target)
    seed = model.target_seed(target)
    rng = np.random.default_rng(seed)
    made: dict[str, list[str]] = {}
    _remove_plots(plots)

    def save(fig, kind: str, stem: str) -> None:  # noqa: ANN001
        pl.save_figure(fig, plots / stem, spec.formats)
        made.setdefault(kind, []).append(str((plots / stem).relative_to(out)))

    if "tsne" not in spec.skip:
        table = tsne_phase(model, dataset, res, spec, seed)
        write_table(table, folder / TSNE, index=False)
        orig = table[table["kind"] == "original"].set_index("sample")
        before = table[table["kind"] == "perturbed_before"].set_index("sample")
        after = table[table["kind"] == "perturbed"].set_index("sample")
        fig = pl.tsne(orig[["tsne1", "tsne2"]], orig["class"], after[["tsne1", "tsne2"]], after["class"], target,
                      perturbed_from=before[["tsne1", "tsne2"]], classes=table.attrs["classes"],
                      title=f"t-SNE ({spec.tsne_mode}): {len(after)} samples perturbed to {target}")
        save(fig, "tsne", FIG_TSNE)
    mu_scaled, mu_expr = target_means(model, dataset, target)
    sources = res.sources
    if "heatmap" not in spec.skip:
        for s in _heatmap_choice(res, spec, rng):
            x = res.x_scaled.loc[s, model.genes].to_numpy()
            p = res.p_scaled.loc[s, model.genes].to_numpy()
            save(pl.heatmap(x, p, mu_scaled, model.genes, s, str(sources.loc[s]), target), "heatmap",
                 heatmap_stem(s))
            xe = res.x_expr.loc[s, model.genes].to_numpy()
            pe = res.p_expr.loc[s, model.genes].to_numpy()
            save(pl.heatmap(xe, pe, mu_expr, model.genes, s, str(sources.loc[s]), target, units="expr"),
                 "heatmap_expr", heatmap_stem(s, expr=True))
    if "panel" not in spec.skip:
        counts = sources[sources != target].value_counts()
        chosen = sorted(counts.index[: spec.panel_sources])
        blocks = []
        for src in chosen:
            names = sources.index[sources == src]
            s = names[int(rng.integers(len(names)))]
            blocks.append((s, src, res.x_scaled.loc[s, model.genes].to_numpy(),
                           res.p_scaled.loc[s, model.genes].to_numpy()))
        if blocks:
            save(pl.heatmap_panel(blocks, mu_scaled, model.genes, target), "panel", FIG_PANEL)
    if "history" not in spec.skip and (folder / HISTORY).exists():
        hist = pd.read_csv(folder / HISTORY, sep="\t")
        best = model.generator_summaries.get(target, {}).get("best_epoch")
        save(pl.history(hist, f"Generator training, target {target}", best_epoch=best), "history", FIG_HISTORY)
    return made


def classifier_plot(out: Path, formats: tuple[str, ...] = ("png", "svg")) -> str | None:
    """Draw the classifier's training history into ``OUT/plots/classifier_history``."""
    from tspg import pl

    path = out / CLASSIFIER_HISTORY
    if not path.exists():
        return None
    hist = pd.read_csv(path, sep="\t")
    pl.save_figure(pl.history(hist, "Classifier training"), out / PLOTS / FIG_CLASSIFIER_HISTORY, formats)
    return f"{PLOTS}/{FIG_CLASSIFIER_HISTORY}"


def _remove_plots(plots: Path) -> None:
    """Remove a target's earlier figures (their samples or options may differ now)."""
    if plots.is_dir():
        for f in plots.iterdir():
            if f.suffix in (".png", ".svg") and f.is_file():
                f.unlink()


def export_phase(model: TSPG, dataset: Dataset | None, out: Path, target: str, path: Path | None = None,
                 spec: PlotSpec | None = None) -> Path:
    """Write a target's perturbations as AnnData (``.h5ad``) for scanpy users; see :func:`tspg.tl.to_anndata`.

    With the run's ``dataset`` every perturbed sample (not only the plotted ones) is placed in a t-SNE map of the
    original samples (``obsm['X_tspg_tsne']`` after, ``obsm['X_tspg_tsne_before']`` before the perturbation).
    """
    from dataclasses import replace

    from tspg import tl

    folder = out / target_dirname(target)
    res = read_target(out, target)
    tsne = None
    if dataset is not None:
        spec = replace(spec or PlotSpec(), tsne_samples=None, tsne_classes=None, include_target=True)
        table = tsne_phase(model, dataset, res, spec, model.target_seed(target))
        after = table[table["kind"] == "perturbed"].set_index("sample")[["tsne1", "tsne2"]]
        before = table[table["kind"] == "perturbed_before"].set_index("sample")[["tsne1", "tsne2"]]
        tsne = after.join(before.add_prefix("before_"))
    mpath = folder / METRICS
    metrics = json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {}
    adata = tl.to_anndata(res.x_expr[model.genes], res.x_adv_expr[model.genes], res.predictions, target, tsne=tsne,
                          metrics=metrics, run={"seed": model.seed, "classes": model.classes,
                                                "run_folder": str(out.resolve()),
                                                "tsne_mode": spec.tsne_mode if spec else None})
    path = Path(path) if path else folder / H5AD
    atomic_write(path, lambda p: adata.write_h5ad(p))
    log.info("target '%s': AnnData written to %s (%d samples x %d genes)", target, path, *adata.shape)
    return path
