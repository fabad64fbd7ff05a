"""Reading and validating inputs: GEMs, labels, gene sets; the split and the scaler."""

from tspg._options import IMPUTE_METHODS
from tspg.data._dataset import (
    ALL_TARGETS,
    Dataset,
    MinMaxScaler,
    Prepared,
    align_labels,
    check_split_sizes,
    check_targets,
    file_sha256,
    fill_missing,
    from_anndata,
    in_gene_order,
    load_dataset,
    match_genes,
    prepare,
    resolve_targets,
    stratified_split,
    strip_ensembl_version,
)
from tspg.data._errors import InputError
from tspg.data._gem import GEM_FORMATS, gem_format, read_gem, read_h5ad_matrix
from tspg.data._genesets import read_gmt, select_gene_sets
from tspg.data._labels import labels_from_obs, read_labels, share_called_target
from tspg.data._synthetic import SyntheticAtlas, make_atlas, make_paired_atlas
from tspg.data._transform import TRANSFORM_UNITS, TRANSFORMS, apply_transform, check_transform, looks_like_counts

__all__ = [
    "ALL_TARGETS",
    "GEM_FORMATS",
    "IMPUTE_METHODS",
    "Dataset",
    "InputError",
    "MinMaxScaler",
    "Prepared",
    "SyntheticAtlas",
    "TRANSFORMS",
    "TRANSFORM_UNITS",
    "align_labels",
    "apply_transform",
    "check_split_sizes",
    "check_targets",
    "resolve_targets",
    "check_transform",
    "file_sha256",
    "fill_missing",
    "from_anndata",
    "gem_format",
    "in_gene_order",
    "labels_from_obs",
    "load_dataset",
    "looks_like_counts",
    "make_atlas",
    "make_paired_atlas",
    "match_genes",
    "prepare",
    "read_gem",
    "read_gmt",
    "read_h5ad_matrix",
    "read_labels",
    "select_gene_sets",
    "share_called_target",
    "stratified_split",
    "strip_ensembl_version",
]
