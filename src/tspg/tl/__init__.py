"""Analysis of results: top perturbed genes, their consistency across sources, enrichment, baselines and metrics."""

from tspg.tl._anndata import to_anndata
from tspg.tl._baselines import (
    BASELINES,
    N_COMPONENTS,
    class_mean_shift,
    clip_perturbed,
    fit_pca,
    perturb_baseline,
    perturb_baselines,
    project,
)
from tspg.tl._embedding import TSNE_MODES, TsneMap, choose_tsne_samples, tsne_map
from tspg.tl._enrich import enrich
from tspg.tl._evaluate import (
    ALL,
    COMPARED_BASELINES,
    COMPARED_METRICS,
    FLOOR,
    HEADLINE_METRICS,
    References,
    behind_baselines,
    behind_sentence,
    best_baseline,
    evaluate,
    evaluation_markdown,
    fit_references,
)
from tspg.tl._metrics import METRICS, MetricInput, c2st_auc, compute_metrics, energy_distance, mmd
from tspg.tl._topgenes import (
    consensus_genes,
    top_gene_summary,
    top_gene_summary_by_source,
    top_genes_per_sample,
    unique_top_genes,
)

__all__ = [
    "ALL",
    "BASELINES",
    "COMPARED_BASELINES",
    "COMPARED_METRICS",
    "FLOOR",
    "HEADLINE_METRICS",
    "METRICS",
    "MetricInput",
    "N_COMPONENTS",
    "References",
    "behind_baselines",
    "behind_sentence",
    "best_baseline",
    "c2st_auc",
    "class_mean_shift",
    "clip_perturbed",
    "compute_metrics",
    "energy_distance",
    "evaluate",
    "evaluation_markdown",
    "fit_pca",
    "fit_references",
    "mmd",
    "perturb_baseline",
    "perturb_baselines",
    "project",
    "TSNE_MODES",
    "TsneMap",
    "choose_tsne_samples",
    "to_anndata",
    "tsne_map",
    "consensus_genes",
    "enrich",
    "top_gene_summary",
    "top_gene_summary_by_source",
    "top_genes_per_sample",
    "unique_top_genes",
]
