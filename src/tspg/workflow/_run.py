"""The run-folder workflow behind the CLI: train the classifier, train generators, perturb, write outputs.

A run folder holds everything a later phase needs (see the README's "Output folder"); each phase can reload it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspg._io import write_json, write_table
from tspg._names import (
    CLASSIFIER_HISTORY,
    CLASSIFIER_METRICS,
    DATA_SUMMARY,
    DIRECTIONS,
    ENRICHMENT_RANKED,
    EVALUATION_MD,
    HISTORY,
    MANIFEST,
    MEAN_SHIFT,
    MEAN_SHIFT_SCALED,
    METRICS,
    PERTURBATIONS,
    PERTURBATIONS_SCALED,
    PERTURBED,
    PERTURBED_SCALED,
    PLOTS,
    PREDICTIONS,
    ROOT_DIRS,
    ROOT_FILES,
    TARGET_OUTPUTS,
    TOP_GENES,
    TOP_GENES_BY_SOURCE,
    TOP_GENES_PER_SAMPLE,
    check_target_dirs,
    enrichment_file,
    target_dirname,
)
from tspg._options import RANK_UNITS
from tspg.data import (
    Dataset,
    InputError,
    apply_transform,
    check_targets,
    file_sha256,
    load_dataset,
    match_genes,
    read_gem,
    read_labels,
)
from tspg.model import TSPG, read_manifest
from tspg.workflow._memory import release_memory

log = logging.getLogger(__name__)


@dataclass
class DataSpec:
    """Where the data come from and how to read them (recorded in the manifest to reload them later)."""

    data: str
    labels: str | None = None
    labels_key: str | None = None
    transpose: bool = False
    layer: str | None = None
    use_raw: bool = False
    gene_sets: str | None = None
    gene_set_names: list[str] = field(default_factory=list)
    allow_missing_labels: bool = False
    impute: str = "none"
    gene_id_column: str | None = None

    def load(self) -> Dataset:
        """Read and validate the data set; its ``sources`` record these options and the files' SHA-256."""
        dataset = load_dataset(
            self.data, self.labels, labels_key=self.labels_key, transpose=self.transpose, layer=self.layer,
            use_raw=self.use_raw, gene_sets=self.gene_sets, gene_set_names=self.gene_set_names or None,
            allow_missing_labels=self.allow_missing_labels, impute=self.impute,  # type: ignore[arg-type]
            gene_id_column=self.gene_id_column,
        )
        dataset.sources = {**self.to_dict(), "sha256": dataset.sources.get("sha256", {})}
        return dataset

    def to_dict(self) -> dict:
        """JSON-ready form with absolute paths."""
        d = dict(self.__dict__)
        for k in ("data", "labels", "gene_sets"):
            if d[k] is not None:
                d[k] = str(Path(d[k]).resolve())
        return d


@dataclass
class PerturbSpec:
    """Which samples to perturb: the held-out part (default), every sample, or another GEM file."""

    which: str = "test"
    data: str | None = None
    labels: str | None = None


def check_out_folder(out: Path, force: bool) -> None:
    """Refuse to write a new run into a folder that already holds one, unless ``force``."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder.")
    for parent in out.resolve().parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"--out {out}: {parent} is a file, so the folder cannot be made; choose another --out.")
    if (out / MANIFEST).exists() and not force:
        raise InputError(f"--out {out} already holds a tspg run; pass --resume to finish an interrupted run of the "
                         "same command, --force to replace it, or choose another folder.")


def clear_run(out: Path) -> None:
    """Remove the files of the tspg run in ``out`` (its root files and its targets' folders), nothing else."""
    import json
    import shutil

    manifest = out / MANIFEST
    if not manifest.exists():
        return
    try:
        targets = json.loads(manifest.read_text(encoding="utf-8")).get("targets", {})
    except (json.JSONDecodeError, AttributeError):
        targets = {}
    for info in targets.values():
        folder = out / str(info.get("dir", ""))
        if info.get("dir") and folder.is_dir() and folder.resolve().parent == out.resolve():
            shutil.rmtree(folder)
    for name in ROOT_FILES:
        (out / name).unlink(missing_ok=True)
    for name in ROOT_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def clear_target_outputs(out: Path, target: str) -> None:
    """Remove a target's perturbation outputs (they belong to the generator being replaced).

    The run's ``evaluation.md`` is rewritten without the target's old table (from the other targets'
    ``evaluation.tsv``).
    """
    import shutil

    from tspg.workflow._evaluation import write_evaluation_md

    for name in TARGET_OUTPUTS:
        (out / target_dirname(target) / name).unlink(missing_ok=True)
    plots = out / target_dirname(target) / PLOTS
    if plots.is_dir():
        shutil.rmtree(plots)
    if (out / EVALUATION_MD).exists():
        try:
            targets = list(read_manifest(out)["targets"])
        except InputError:  # no manifest yet (or a damaged one, which the next reader reports)
            targets = []
        write_evaluation_md(out, sorted({*targets, target}))


def check_run_targets(targets: list[str], classes: list[str]) -> None:
    """Every target must be a class, and targets must map to distinct folder names."""
    check_targets(targets, classes)
    check_target_dirs(targets)


def load_perturb_data(spec: PerturbSpec, data_spec: DataSpec, genes: list[str] | None = None,
                      impute: str = "none", transform: str = "none") -> tuple[pd.DataFrame, pd.Series | None, str]:
    """Read the external GEM (and optional labels) to perturb; with ``genes``, check it can be perturbed.

    The file is read as samples x genes; an ``.h5ad`` uses the training data's ``--layer``/``--use-raw``, a
    ``.gct`` its ``--gene-id-column``. With
    ``genes``, its values in those genes must take the run's ``transform`` (no negative values for a log).
    """
    from tspg.data import gem_format

    h5ad = gem_format(spec.data) == "h5ad"
    gct = gem_format(spec.data) == "gct"
    gem = read_gem(spec.data, layer=data_spec.layer if h5ad else None, use_raw=data_spec.use_raw and h5ad,
                   gene_id_column=data_spec.gene_id_column if gct else None)
    if genes is not None:
        chosen = gem.iloc[:, match_genes(gem.columns, genes, f"`perturb_data` {spec.data}")]
        if impute in ("none", "drop-genes") and not np.isfinite(chosen.to_numpy()).all():
            raise InputError(f"`perturb_data` {spec.data} has missing or infinite values in the model's genes; fill "
                             "them, or train with --impute mean|median|zero.")
        apply_transform(chosen.to_numpy(np.float32), transform, f"`perturb_data` {spec.data}")
    labels = None
    if spec.labels is not None:
        labels = read_labels(spec.labels, samples=list(gem.index))
        unknown = labels.index[~labels.index.isin(gem.index)]
        if len(unknown) == len(labels):
            raise InputError(f"{spec.labels}: none of its sample ids are in {spec.data}.")
    return gem, labels, str(spec.data)


def classifier_phase(model: TSPG, dataset: Dataset, out: Path) -> dict:
    """Fit the classifier, write ``classifier_metrics.json``, its history and the data summary, then save the model.

    The manifest is written last (by :meth:`TSPG.save`), so a folder with a manifest has every file of the phase:
    a process killed before it leaves no run, and the same command starts again.
    """
    model.fit_classifier(dataset)
    release_memory()
    out.mkdir(parents=True, exist_ok=True)
    metrics = model.classifier_metrics(dataset)
    write_json(out / CLASSIFIER_METRICS, metrics)
    write_table(pd.DataFrame(model.classifier_history), out / CLASSIFIER_HISTORY, index=False)
    write_table(data_summary(model, dataset), out / DATA_SUMMARY, index=False)
    model.save(out)
    log.info("classifier: held-out accuracy %.3f on %d samples", metrics["accuracy"], metrics["n_test"])
    return metrics


def data_summary(model: TSPG, dataset: Dataset) -> pd.DataFrame:
    """Samples per class in each part of the split (class, train, val, test, total)."""
    parts = pd.crosstab(dataset.labels.reindex(model.split.index), model.split)
    parts = parts.reindex(index=model.classes, columns=["train", "val", "test"], fill_value=0)
    parts["total"] = parts.sum(axis=1)
    return parts.rename_axis(index="class", columns=None).reset_index()


def generator_phase(model: TSPG, dataset: Dataset, target: str, out: Path) -> None:
    """Fit one target's generator and save it (with its history) before anything else can fail.

    The history is written before the manifest names the target, so a target in the manifest has both.
    """
    model.fit_generator(dataset, target)
    release_memory()
    clear_target_outputs(out, target)
    (out / target_dirname(target)).mkdir(parents=True, exist_ok=True)
    write_table(pd.DataFrame(model.generator_histories[target]), out / target_dirname(target) / HISTORY,
                index=False)
    model.save(out)


def conditional_phase(model: TSPG, dataset: Dataset, targets: list[str], out: Path) -> None:
    """Fit one conditional generator for ``targets``; save it and each target's history (as generator_phase)."""
    model.fit_conditional(dataset, targets)
    release_memory()
    for t in targets:
        clear_target_outputs(out, t)
        (out / target_dirname(t)).mkdir(parents=True, exist_ok=True)
        write_table(pd.DataFrame(model.generator_histories[t]), out / target_dirname(t) / HISTORY, index=False)
    model.save(out)


def perturb_phase(model: TSPG, dataset: Dataset | None, target: str, out: Path, spec: PerturbSpec,
                  data_spec: DataSpec | None = None,
                  loaded: tuple[pd.DataFrame, pd.Series | None, str] | None = None) -> dict:
    """Perturb the chosen samples towards ``target`` and write every per-target output file.

    ``loaded`` is :func:`load_perturb_data`'s result for ``spec`` where the caller has read it already (one read
    for every target); by default ``spec.data`` is read here.
    """
    folder = out / target_dirname(target)
    if spec.data is not None:
        gem, labels, source = loaded if loaded is not None else load_perturb_data(
            spec, data_spec, model.genes, model.impute, model.transform)
    else:
        if dataset is None:
            raise RuntimeError("dataset needed")
        split = model.split
        samples = split.index if spec.which == "all" else split.index[split == "test"]
        gem, labels, source = dataset.gem.loc[samples], dataset.labels.loc[samples], "the run's data"
    result = model.perturb(gem, target, labels=labels, source=source, external=spec.data is not None)
    metrics = result.metrics()
    metrics["perturbed_samples"] = spec.data if spec.data is not None else spec.which
    metrics["training"] = model.generator_summaries.get(target, {})
    write_table(result.perturbed_expr, folder / PERTURBED)
    write_table(result.perturbation_expr, folder / PERTURBATIONS)
    write_table(result.perturbed_scaled, folder / PERTURBED_SCALED)
    write_table(result.perturbation_scaled, folder / PERTURBATIONS_SCALED)
    write_table(result.predictions, folder / PREDICTIONS)
    if dataset is not None:
        shift_expr, shift_scaled = mean_shift_tables(model, dataset, target)
        write_table(shift_expr, folder / MEAN_SHIFT)
        write_table(shift_scaled, folder / MEAN_SHIFT_SCALED)
    write_json(folder / METRICS, metrics)
    acc = metrics["perturbation_accuracy"]
    log.info("target '%s': perturbation accuracy %s on %d of %d samples not already called the target", target,
             "n/a" if acc is None else f"{acc:.3f}", metrics["n_not_already_target"], metrics["n_perturbed"])
    return metrics


def mean_shift_tables(model: TSPG, dataset: Dataset, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original tool's baseline ``mu_target - mu_class`` per class (training part), for ``mean_shift.tsv``.

    Returns
    -------
    Classes x genes in original units and in scaled units (:func:`tspg.tl.class_mean_shift`).
    """
    from tspg import tl

    train = model.split[model.split == "train"].index
    scaled = tl.class_mean_shift(model.scale(dataset.gem.loc[train]), dataset.labels.loc[train].to_numpy(),
                                 model.classes, target)
    index = pd.Index(model.classes, name="source_class")
    return (pd.DataFrame(model.scaler.inverse_transform_delta(scaled), index=index, columns=model.genes),
            pd.DataFrame(scaled, index=index, columns=model.genes))


def reload_dataset(model: TSPG, override: DataSpec | None) -> tuple[Dataset, DataSpec]:
    """Load the run's data again (from the manifest's inputs or ``override``) and check it is unchanged."""
    recorded = {k: v for k, v in model.inputs.items() if k in DataSpec.__dataclass_fields__}
    spec = override or DataSpec(**recorded)
    if override is None and not Path(spec.data).exists():
        raise InputError(f"The run's data file {spec.data} is gone; pass --data (and --labels) to point at it.")
    dataset = spec.load()
    check_same_data(model, spec, dataset)
    return dataset, spec


def check_same_data(model: TSPG, spec: DataSpec, dataset: Dataset) -> None:
    """Refuse data that are not the run's: files whose SHA-256 differs from the recorded, other samples or genes."""
    recorded_digests = model.inputs.get("sha256", {})
    for key in ("data", "labels", "gene_sets"):
        path = getattr(spec, key)
        digest = recorded_digests.get(key)
        if digest and path and digest != file_sha256(path):
            raise InputError(f"{path} differs from the file this run's classifier was trained on (SHA-256 mismatch); "
                             "use the same file or start a new run.")
    if list(dataset.gem.columns) != model.genes or list(dataset.gem.index) != list(model.split.index):
        raise InputError("The data's samples or genes differ from those of the run's classifier; use the same files "
                         "and options, or start a new run.")


def _target_folder(out: Path, target: str) -> Path:
    folder = out / target_dirname(target)
    if not (folder / PERTURBATIONS).exists():
        raise InputError(f"{folder} has no perturbations.tsv; run 'tspg perturb {out} --target \"{target}\"' first.")
    return folder


def _perturb_fix(folder: Path) -> str:
    return f"re-create it with 'tspg perturb {folder.parent}' (add --target for one target)"


def read_run_table(path: Path, fix: str, *, matrix: bool = False, **kw: object) -> pd.DataFrame:
    """A table of a run folder, read with ``pd.read_csv(path, sep="\\t", **kw)``, or one :class:`InputError`.

    A missing, unreadable, truncated or (with ``matrix``: a samples x genes matrix of numbers) non-numeric table
    names the file and ``fix``; pandas' own errors never reach the user.
    """
    if not path.is_file():
        raise InputError(f"{path} is missing; {fix}.")
    # the first column's names as written ("0018" is not 18, "NA" is not missing), whatever its header
    names_first = kw.get("index_col") == 0 and "usecols" not in kw and isinstance(kw.get("dtype", {}), dict)
    if names_first:
        kw.pop("index_col")
        kw["dtype"] = {0: str, **(kw.get("dtype") or {})}  # type: ignore[dict-item]
        if matrix:  # numbers only: no text is a missing value (one would fail the check below anyway)
            kw.setdefault("na_filter", False)
        elif "keep_default_na" not in kw:  # only an empty cell is missing
            kw.update(keep_default_na=False, na_values=[""])
    try:
        frame = pd.read_csv(path, sep="\t", **kw)
        if names_first:
            name = frame.columns[0]
            unnamed = str(name).startswith("Unnamed: 0")
            frame.index = pd.Index(frame.pop(name).to_numpy(), name=None if unnamed else name)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is damaged ({str(exc).splitlines()[0][:100]}); {fix}.") from None
    if matrix:
        numeric = all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in frame.dtypes)
        # no float copy of the matrix (a GTEx-sized one is hundreds of MB): the check reads the frame's own array
        if frame.empty or not numeric or not np.isfinite(frame.to_numpy(copy=False)).all():
            raise InputError(f"{path} is damaged or truncated (not a complete matrix of numbers); {fix}.")
    if names_first or "index_col" in kw:
        frame.index = frame.index.astype(str)
    return frame


def read_run_json(path: Path, fix: str) -> dict:
    """A JSON file of a run folder as a dict, or one :class:`InputError` naming the file and ``fix``."""
    import json

    if not path.is_file():
        raise InputError(f"{path} is missing; {fix}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is damaged ({str(exc).splitlines()[0][:100]}); {fix}.") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is damaged (not a JSON object); {fix}.")
    return data


def read_predictions(folder: Path) -> pd.DataFrame:
    """A target folder's ``predictions.tsv`` (labels as strings, missing labels as NaN, sample names as str)."""
    pred = read_run_table(folder / PREDICTIONS, _perturb_fix(folder), index_col=0, dtype={"label": str},
                          keep_default_na=False, na_values=[""])
    if "label" not in pred.columns or "predicted_before" not in pred.columns:
        raise InputError(f"{folder / PREDICTIONS} is damaged (no label or predicted_before column); "
                         f"{_perturb_fix(folder)}.")
    return pred


def source_classes(predictions: pd.DataFrame) -> pd.Series:
    """Source class per perturbed sample: its label where known, else f's call before the perturbation."""
    return predictions["label"].where(predictions["label"].notna(), predictions["predicted_before"]).astype(object)


def genes_phase(out: Path, target: str, k: int = 20, rank_units: str = "expr") -> dict:
    """Write the top perturbed genes of a target (per sample, overall, per source) and their unique counts.

    Only the transitions count: samples whose source class (:func:`source_classes`) is the target itself are left
    out (where every perturbed sample is, they are used, with a warning).
    """
    from tspg import tl

    if rank_units not in RANK_UNITS:
        raise InputError(f"`rank_units` must be one of {', '.join(RANK_UNITS)}, not {rank_units!r}.")
    folder = _target_folder(out, target)
    name = PERTURBATIONS if rank_units == "expr" else PERTURBATIONS_SCALED
    pert = read_run_table(folder / name, _perturb_fix(folder), matrix=True, index_col=0)
    sources = source_classes(read_predictions(folder))
    if list(sources.index) != list(pert.index):
        raise InputError(f"{folder / name} and {folder / PREDICTIONS} list different samples; {_perturb_fix(folder)}.")
    # the target's own samples are no transition to it: where G's training was kept it moves them too, a little,
    # and their top genes would be votes in the consensus of the transitions
    moved = (sources.astype(str) != str(target)).to_numpy()
    if moved.any():
        pert, sources = pert[moved], sources[moved]
    else:
        log.warning("target '%s': every perturbed sample is of the target class itself; its top genes are those "
                    "of the target's own samples", target)
    per_sample = tl.top_genes_per_sample(pert, sources, k=k)
    summary = tl.top_gene_summary(per_sample, pert)
    write_table(per_sample, folder / TOP_GENES_PER_SAMPLE, index=False)
    write_table(summary, folder / TOP_GENES)
    write_table(tl.top_gene_summary_by_source(per_sample, pert, sources), folder / TOP_GENES_BY_SOURCE,
                index=False)
    metrics = read_run_json(folder / METRICS, _perturb_fix(folder))
    metrics.update(tl.unique_top_genes(per_sample))
    metrics["top_k"] = k
    metrics["rank_units"] = rank_units
    metrics["consensus_up"] = tl.consensus_genes(summary, "up", k)
    metrics["consensus_down"] = tl.consensus_genes(summary, "down", k)
    write_json(folder / METRICS, metrics)
    log.info("target '%s': %d unique genes in the top-%d up lists, %d in the down lists", target,
             metrics["unique_top_up"], k, metrics["unique_top_down"])
    return metrics


def enrich_phase(out: Path, target: str, gmt_paths: list[str], genes: list[str],
                 by_source: bool = False) -> dict[str, pd.DataFrame]:
    """Enrichment of the consensus top-k up and down genes against the GMT libraries (background: ``genes``).

    With ``by_source`` also the consensus top-k genes of each source class on their own
    (``enrichment_by_source_up.tsv`` / ``_down.tsv``, with a ``source`` column).
    """
    from tspg import tl
    from tspg.data import read_gmt

    folder = _target_folder(out, target)
    metrics = read_run_json(folder / METRICS, _perturb_fix(folder))
    if "consensus_up" not in metrics:
        raise InputError(f"{folder}: no top genes yet; run 'tspg genes {out}' first.")
    libraries = {Path(p).name: read_gmt(p, genes=genes) for p in gmt_paths}
    tables = {}
    for direction in DIRECTIONS:
        table = tl.enrich(metrics[f"consensus_{direction}"], genes, libraries)
        write_table(table, folder / enrichment_file(direction), index=False)
        tables[direction] = table
        if len(table):
            top = table.iloc[0]
            log.info("target '%s' %s genes: top term %s (%s), q = %.2g", target, direction, top["term"],
                     top["library"], top["q"])
    for direction in DIRECTIONS:
        path = folder / enrichment_file(direction, by_source=True)
        if not by_source:
            path.unlink(missing_ok=True)
            continue
        per_source = read_run_table(folder / TOP_GENES_BY_SOURCE, f"re-create it with 'tspg genes {out}'",
                                    dtype={"source": str, "gene": str})
        frames = []
        k = int(metrics.get("top_k", 20))
        for src, part in per_source.groupby("source", sort=True):
            query = tl.consensus_genes(part.set_index("gene"), direction, k)
            if query:
                frames.append(tl.enrich(query, genes, libraries).assign(source=src))
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["source"])
        table = table[["source", *[c for c in table.columns if c != "source"]]]
        write_table(table, path, index=False)
        tables[f"by_source_{direction}"] = table
    tables["ranked"] = ranked_enrichment(folder, target, libraries, metrics.get("rank_units", "expr"))
    return tables


def ranked_enrichment(folder: Path, target: str, libraries: dict, rank_units: str = "expr") -> pd.DataFrame:
    """Preranked enrichment (:func:`tspg.tl.enrich_ranked`) of a target's mean perturbation per gene.

    The score of a gene is its mean perturbation over the perturbed samples that do not belong to the target
    (their label, else f's call before), in the units the top genes were ranked in; once over all of them
    (``source`` = ``all``) and once per source class. Writes ``enrichment_ranked.tsv``.
    """
    from tspg import tl

    name = PERTURBATIONS if rank_units == "expr" else PERTURBATIONS_SCALED
    pert = read_run_table(folder / name, _perturb_fix(folder), matrix=True, index_col=0)
    sources = source_classes(read_predictions(folder)).reindex(pert.index)
    moved = sources != target
    groups = [(tl.ALL, moved.to_numpy())]
    # a class named like the pooled rows keeps only those (as in the evaluation)
    groups += [(str(c), (sources == c).to_numpy()) for c in sorted(sources[moved].dropna().unique())
               if str(c) != tl.ALL]
    frames = []
    for src, rows in groups:
        if rows.any():
            frames.append(tl.enrich_ranked(pert[rows].mean(0), libraries).assign(source=src))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=tl.RANKED_COLUMNS)
    table = table.reindex(columns=["source", *tl.RANKED_COLUMNS])
    write_table(table, folder / ENRICHMENT_RANKED, index=False)
    overall = table[table["source"] == tl.ALL]
    for sign, word in ((1, "up"), (-1, "down")):
        side = overall[np.sign(overall["nes"]) == sign]
        if len(side):
            top = side.iloc[0]
            log.info("target '%s' ranked enrichment %s: %s (%s), NES %.2f, q = %.2g", target, word, top["term"],
                     top["library"], top["nes"], top["q"])
    return table


def read_classifier_metrics(out: Path) -> dict:
    """``classifier_metrics.json`` of a run folder (checked as :func:`read_run_json` checks)."""
    return read_run_json(out / CLASSIFIER_METRICS, "re-create the run with 'tspg run ... --force'")


def read_target_metrics(out: Path, target: str) -> dict:
    """A target's ``metrics.json`` (checked as :func:`read_run_json` checks)."""
    folder = out / target_dirname(target)
    return read_run_json(folder / METRICS, _perturb_fix(folder))


#: Settings a resumed run must share with the run in its folder (manifest key path -> what the user changes).
_RESUME_KEYS = (("seed", "--seed"), ("config.test_size", "--test-size"), ("config.val_size", "--val-size"),
                ("config.impute", "--impute"), ("config.transform", "--transform"),
                ("config.classifier", "the classifier options"),
                ("config.generator", "the generator options"))


def _manifest_value(manifest: dict, key: str) -> object:
    value: object = manifest
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None and key == "config.transform":  # recorded since the transform exists; before: none
        return "none"
    return value


def resume_run(out: Path, model: TSPG, dataset: Dataset, spec: DataSpec, targets: list[str],
               device: str = "auto") -> tuple[TSPG, set[str]]:
    """Load the interrupted run in ``out`` to finish it with the command that made it (``tspg run --resume``).

    The folder's settings must equal ``model``'s (the command's: seed, split sizes, imputation, classifier and
    generator settings) and its data ``dataset``'s (the same files by SHA-256, the same samples and genes); any
    difference is one :class:`InputError` naming it. Targets the folder holds no generator for are trained by the
    caller; a target whose ``metrics.json`` is written is complete (perturb writes it last).

    Returns
    -------
    The loaded model (with the command's generator settings for the targets still to train) and the targets that
    are complete.
    """
    from tspg.model import read_manifest

    manifest = read_manifest(out)
    mine = model.settings()
    for key, what in _RESUME_KEYS:
        if _manifest_value(manifest, key) != _manifest_value(mine, key):
            raise InputError(f"--resume: the run in {out} was made with other settings ({what} differ); repeat the "
                             "command that made it, or pass --force to replace the run.")
    loaded = TSPG.load(out, device=device, progress=model.progress)
    check_same_data(loaded, spec, dataset)
    missing = [t for t in targets if t not in loaded.generators]
    done = {t for t in targets if t in loaded.generators
            and (out / target_dirname(t) / METRICS).is_file() and (out / target_dirname(t) / PERTURBATIONS).is_file()}
    log.info("resuming %s: classifier and %d target(s) kept, %d to train, %d to perturb", out, len(done),
             len(missing), len(targets) - len(done) - len(missing))
    return loaded, done
