"""Analysis of results: top perturbed genes, their consistency across sources, enrichment, baselines and metrics."""

from tspg.tl._anndata import to_anndata
from tspg.tl._baselines import BASELINES, clip_perturbed, perturb_baseline, perturb_baselines
from tspg.tl._embedding import TSNE_MODES, TsneMap, choose_tsne_samples, tsne_map
from tspg.tl._enrich import enrich
from tspg.tl._evaluate import (
    FLOOR,
    HEADLINE_METRICS,
    References,
    evaluate,
    evaluation_markdown,
    fit_references,
)
from tspg.tl._metrics import METRICS, MetricInput, compute_metrics, energy_distance, mmd
from tspg.tl._topgenes import (
    consensus_genes,
    top_gene_summary,
    top_gene_summary_by_source,
    top_genes_per_sample,
    unique_top_genes,
)

__all__ = [
    "BASELINES",
    "FLOOR",
    "HEADLINE_METRICS",
    "METRICS",
    "MetricInput",
    "References",
    "clip_perturbed",
    "compute_metrics",
    "energy_distance",
    "evaluate",
    "evaluation_markdown",
    "fit_references",
    "mmd",
    "perturb_baseline",
    "perturb_baselines",
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
