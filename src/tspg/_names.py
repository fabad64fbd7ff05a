"""Every file name of a run folder, in one place (the README's "Output folder" describes each file).

A run folder holds root files (the classifier, the manifest, the report) and one folder per target
(:func:`target_dirname`) with that target's generator and outputs. Nothing else in tspg spells these names.
"""

from __future__ import annotations

import re

from tspg.data import InputError

# ---------------------------------------------------------------- root of a run folder
MANIFEST = "manifest.json"
#: The run folder's write lock (:func:`tspg.workflow.run_lock`).
LOCK = ".tspg.lock"
CLASSIFIER_WEIGHTS = "classifier.safetensors"
#: The conditional generator's weights (one file for every target it serves), in the run folder's root.
CONDITIONAL_WEIGHTS = "generator_conditional.safetensors"
CLASSIFIER_METRICS = "classifier_metrics.json"
CLASSIFIER_HISTORY = "classifier_history.tsv"
DATA_SUMMARY = "data_summary.tsv"
REPORT = "report.html"
EVALUATION_MD = "evaluation.md"
#: Figures: ``plots/`` at the root (the classifier's history) and in each target's folder.
PLOTS = "plots"
ROOT_FILES: tuple[str, ...] = (MANIFEST, CLASSIFIER_WEIGHTS, CLASSIFIER_METRICS, CLASSIFIER_HISTORY, DATA_SUMMARY,
                               REPORT, EVALUATION_MD, CONDITIONAL_WEIGHTS)
ROOT_DIRS: tuple[str, ...] = (PLOTS,)

# ---------------------------------------------------------------- a target's folder
GENERATOR_WEIGHTS = "generator.safetensors"
HISTORY = "history.tsv"
METRICS = "metrics.json"
PERTURBED = "perturbed.tsv"
PERTURBATIONS = "perturbations.tsv"
PERTURBED_SCALED = "perturbed_scaled.tsv"
PERTURBATIONS_SCALED = "perturbations_scaled.tsv"
PREDICTIONS = "predictions.tsv"
MEAN_SHIFT = "mean_shift.tsv"
MEAN_SHIFT_SCALED = "mean_shift_scaled.tsv"
TOP_GENES_PER_SAMPLE = "top_genes_per_sample.tsv"
TOP_GENES = "top_genes.tsv"
TOP_GENES_BY_SOURCE = "top_genes_by_source.tsv"
TSNE = "tsne.tsv"
H5AD = "perturbed.h5ad"
EVALUATION_TSV = "evaluation.tsv"
DIRECTIONS: tuple[str, ...] = ("up", "down")

# ---------------------------------------------------------------- figures (stems; each is written as .png and .svg)
FIG_TSNE = "tsne"
FIG_PANEL = "panel"
FIG_HISTORY = "history"
FIG_CLASSIFIER_HISTORY = "classifier_history"
FIG_HEATMAP_PREFIX = "heatmap_"


def heatmap_stem(sample: object, expr: bool = False) -> str:
    """File stem of a sample's heatmap: ``heatmap_<sample>`` (scaled units) or ``heatmap_<sample>_expr``.

    The sample name is made file-safe (:func:`safe_name`, no leading or trailing dots, at most 100 characters).
    """
    stem = safe_name(sample).strip(".")[:100] or "sample"
    return f"{FIG_HEATMAP_PREFIX}{stem}{'_expr' if expr else ''}"


def enrichment_file(direction: str, by_source: bool = False) -> str:
    """``enrichment_up.tsv`` / ``enrichment_down.tsv`` (``enrichment_by_source_*`` with ``by_source``)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be up or down, not {direction!r}")
    return f"enrichment_{'by_source_' if by_source else ''}{direction}.tsv"


#: One-sample outputs of ``tspg perturb --perturb-data ONE``: ``<target>/patients/<sample>/``, with its page.
PATIENTS = "patients"
PATIENT_PAGE = "patient.html"
#: Preranked enrichment of a target's mean perturbation (all sources and per source class).
ENRICHMENT_RANKED = "enrichment_ranked.tsv"
ENRICHMENT_FILES: tuple[str, ...] = (*(enrichment_file(d, s) for s in (False, True) for d in DIRECTIONS),
                                     ENRICHMENT_RANKED)
#: The files of a target's folder that belong to its current generator's perturbations (removed when it is
#: replaced).
TARGET_OUTPUTS: tuple[str, ...] = (METRICS, PERTURBED, PERTURBATIONS, PERTURBED_SCALED, PERTURBATIONS_SCALED,
                                   PREDICTIONS, MEAN_SHIFT, MEAN_SHIFT_SCALED, TOP_GENES_PER_SAMPLE, TOP_GENES,
                                   TOP_GENES_BY_SOURCE, *ENRICHMENT_FILES, TSNE, H5AD, EVALUATION_TSV)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: object) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (for file and folder names)."""
    return _UNSAFE.sub("_", str(name))


def target_dirname(target: str) -> str:
    """Folder name of a target class: :func:`safe_name` of it.

    A leading ``.`` also becomes ``_`` (so ``..`` cannot leave the run folder), and a name equal to a file of the
    run folder's root gets a ``_`` prefix. Distinct targets can share a folder name (``α cell`` and ``β cell``
    both give ``__cell``); :func:`check_target_dirs` refuses such a set.
    """
    name = re.sub(r"^\.", "_", safe_name(target))
    return "_" + name if name in ROOT_FILES or name in ROOT_DIRS else name


def check_target_dirs(targets: list[str]) -> None:
    """Raise :class:`~tspg.data.InputError` if two ``targets`` map to one folder name (one would overwrite another)."""
    dirs: dict[str, str] = {}
    for t in targets:
        d = target_dirname(t)
        if d in dirs and dirs[d] != t:
            raise InputError(f"Targets '{dirs[d]}' and '{t}' both map to the folder name '{d}', so one generator "
                             "would overwrite the other in a run folder; train them in separate runs (or rename one "
                             "class).")
        dirs[d] = t
