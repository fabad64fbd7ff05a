"""Analysis of results: top perturbed genes, their consistency across sources, and enrichment."""

from tspg.tl._enrich import enrich
from tspg.tl._topgenes import (
    consensus_genes,
    top_gene_summary,
    top_gene_summary_by_source,
    top_genes_per_sample,
    unique_top_genes,
)

__all__ = [
    "consensus_genes",
    "enrich",
    "top_gene_summary",
    "top_gene_summary_by_source",
    "top_genes_per_sample",
    "unique_top_genes",
]
