"""Reading and validating inputs: GEMs, labels, gene sets; the split and the scaler."""

from tspg.data._dataset import (
    IMPUTE_METHODS,
    Dataset,
    MinMaxScaler,
    Prepared,
    align_labels,
    file_sha256,
    fill_missing,
    load_dataset,
    prepare,
    stratified_split,
)
from tspg.data._errors import InputError
from tspg.data._gem import GEM_FORMATS, gem_format, read_gem, read_h5ad_matrix
from tspg.data._genesets import read_gmt, select_gene_sets
from tspg.data._labels import labels_from_obs, read_labels
from tspg.data._synthetic import SyntheticAtlas, make_atlas, make_paired_atlas

__all__ = [
    "GEM_FORMATS",
    "IMPUTE_METHODS",
    "Dataset",
    "InputError",
    "MinMaxScaler",
    "Prepared",
    "SyntheticAtlas",
    "align_labels",
    "file_sha256",
    "fill_missing",
    "gem_format",
    "labels_from_obs",
    "load_dataset",
    "make_atlas",
    "make_paired_atlas",
    "prepare",
    "read_gem",
    "read_gmt",
    "read_h5ad_matrix",
    "read_labels",
    "select_gene_sets",
    "stratified_split",
]
