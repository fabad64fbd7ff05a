"""Loading a labelled GEM as one validated data set, its stratified split and its MinMax scaler."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspg._options import IMPUTE_METHODS, Impute
from tspg.data._errors import InputError
from tspg.data._gem import anndata_matrix, gem_format, header_genes, read_gem, read_h5ad_matrix
from tspg.data._genesets import GeneSetRows, gene_lookup, read_gmt, select_gene_sets
from tspg.data._ids import strip_ensembl_version
from tspg.data._labels import labels_from_obs, read_labels
from tspg.data._transform import apply_transform

log = logging.getLogger(__name__)

MIN_CLASS_SIZE = 3


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file (read in 8 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _examples(items: pd.Index | list, n: int = 3) -> str:
    return ", ".join(f"'{x}'" for x in list(items)[:n])


def align_labels(gem: pd.DataFrame, labels: pd.Series, allow_missing: bool = False) -> tuple[pd.DataFrame,
                                                                                               pd.Series]:
    """Keep the samples that the GEM and the labels share, in the GEM's order.

    Parameters
    ----------
    gem
        Samples x genes.
    labels
        Labels indexed by sample id.
    allow_missing
        Accept GEM samples without a label and labels without a GEM sample (they are dropped, with a log
        line); otherwise either is an error.

    Returns
    -------
    The GEM and the labels restricted to the shared samples.
    """
    shared = gem.index[gem.index.isin(labels.index)]
    if len(shared) == 0:
        raise InputError(
            f"The labels and the GEM share no sample ids (GEM: {_examples(gem.index)}; labels: "
            f"{_examples(labels.index)}); check that the labels file's first column holds the GEM's sample ids"
            " (is the GEM genes x samples? then pass `transpose=True`)."
        )
    unlabelled = gem.index[~gem.index.isin(labels.index)]
    orphan = labels.index[~labels.index.isin(gem.index)]
    if len(unlabelled) or len(orphan):
        parts = []
        if len(unlabelled):
            parts.append(f"{len(unlabelled)} of {len(gem)} GEM samples have no label (e.g. {_examples(unlabelled)})")
        if len(orphan):
            parts.append(f"{len(orphan)} of {len(labels)} labelled samples are not in the GEM "
                         f"(e.g. {_examples(orphan)})")
        if not allow_missing:
            raise InputError("; ".join(parts) + "; fix the files or pass `allow_missing_labels=True` to use only the "
                             f"{len(shared)} shared samples.")
        log.warning("%s; using the %d shared samples", "; ".join(parts), len(shared))
    if len(shared) == len(gem):  # every sample labelled: the GEM as it is (a GTEx-sized matrix is not copied)
        return gem, labels.loc[shared]
    return gem.loc[shared], labels.loc[shared]


#: The ``--target`` value that means every class.
ALL_TARGETS = "all"


def resolve_targets(targets: list[str] | tuple[str, ...], classes: list[str]) -> list[str]:
    """``targets`` without repeats, ``all`` (:data:`ALL_TARGETS`) replaced by every class in ``classes``' order.

    If a class is itself named ``all``, ``all`` means that class (the data's own name wins) and a log line says
    how to ask for every class instead.
    """
    chosen = list(dict.fromkeys(targets))
    if ALL_TARGETS not in chosen:
        return chosen
    if ALL_TARGETS in classes:
        log.info("a class is named %r: the target %r means that class; list the classes to train every one",
                 ALL_TARGETS, ALL_TARGETS)
        return chosen
    i = chosen.index(ALL_TARGETS)
    return list(dict.fromkeys([*chosen[:i], *classes, *chosen[i + 1:]]))


def check_targets(targets: list[str], classes: list[str]) -> None:
    """Raise :class:`InputError` unless every target is one of ``classes`` (the one check of target names)."""
    for t in targets:
        if t not in classes:
            raise InputError(f"Unknown target class '{t}'; valid classes: {', '.join(map(str, classes))}.")


def match_genes(columns: pd.Index | list[str], genes: list[str], source: str = "the data") -> np.ndarray:
    """Positions in ``columns`` of the model's ``genes``, in the model's order: the one check of new data's genes.

    Genes are matched by name, whatever order the data have them in (extra genes are ignored). Where a name is
    missing, Ensembl version suffixes are ignored on both sides (``ENSG00000223972.5`` matches
    ``ENSG00000223972`` and ``ENSG00000223972.6``) as long as that makes a unique match.

    Parameters
    ----------
    columns
        The new data's gene names.
    genes
        The model's genes.
    source
        Name of the data, for the error message.

    Returns
    -------
    Integer positions, one per gene of ``genes``; :class:`InputError` when a gene is missing or ambiguous.
    """
    columns = pd.Index([str(c) for c in columns])
    if not columns.is_unique:
        dup = columns[columns.duplicated()]
        raise InputError(f"{source} has duplicated gene names (e.g. {_examples(dup)}); make them unique.")
    pos = columns.get_indexer(genes)
    missing = pos < 0
    if missing.any():
        stripped = pd.Index([strip_ensembl_version(c) for c in columns])
        unique = ~stripped.duplicated(keep=False)
        lookup = pd.Series(np.arange(len(columns))[unique], index=stripped[unique])
        for i in np.flatnonzero(missing):
            j = lookup.get(strip_ensembl_version(genes[i]))
            if j is not None:
                pos[i] = int(j)
        n_versionless = int(missing.sum() - (pos < 0).sum())
        if n_versionless:
            log.info("%s: %d of the model's genes matched by Ensembl ID without the version suffix", source,
                     n_versionless)
    if (pos < 0).any():
        lost = [genes[i] for i in np.flatnonzero(pos < 0)]
        raise InputError(f"{source} lacks {len(lost)} of the model's {len(genes)} genes (e.g. {_examples(lost)}); a "
                         "model only applies to data with the genes it was trained on.")
    return pos


def in_gene_order(gem: pd.DataFrame, genes: list[str], source: str = "the data") -> pd.DataFrame:
    """``gem`` with the model's ``genes`` as its columns, in their order (:func:`match_genes` matches them).

    Where the columns are those genes in that order already, ``gem`` itself is returned (no copy of a matrix that
    may be a whole expression atlas); otherwise a copy with the matched columns.
    """
    pos = match_genes(gem.columns, genes, source)
    if len(pos) == gem.shape[1] and (pos == np.arange(len(pos))).all():
        return gem
    return gem.iloc[:, pos]


@dataclass
class Dataset:
    """A validated, labelled GEM (original expression units).

    Construction checks the data (whether made by :func:`load_dataset` or by hand): a numeric samples x genes
    frame with unique sample and gene names, one label per sample (the labels are reordered to the GEM's samples
    and stored as strings), at least two classes and at least :data:`MIN_CLASS_SIZE` samples per class. Missing
    values (NaN) are allowed; :func:`prepare` imputes them when asked to.

    Attributes
    ----------
    gem
        Samples x genes, float32, missing values possibly NaN until :func:`prepare` imputes them.
    labels
        One label per sample (str), in the GEM's sample order.
    gene_set_report
        Per chosen gene set: how many genes it has and which ones the GEM lacks.
    sources
        Input file paths and their SHA-256 digests.

    Examples
    --------
    >>> import pandas as pd
    >>> gem = pd.DataFrame([[1.0, 2.0]] * 6, index=[f"s{i}" for i in range(6)], columns=["G1", "G2"])
    >>> Dataset(gem, pd.Series(["a", "b"] * 3, index=gem.index)).classes
    ['a', 'b']
    """

    gem: pd.DataFrame
    labels: pd.Series
    gene_set_report: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        gem, labels = self.gem, self.labels
        if not isinstance(gem, pd.DataFrame):
            raise InputError(f"Dataset.gem must be a pandas DataFrame (samples x genes), not {type(gem).__name__}.")
        if not isinstance(labels, pd.Series):
            raise InputError(f"Dataset.labels must be a pandas Series indexed by sample, not {type(labels).__name__}.")
        if gem.shape[0] == 0 or gem.shape[1] == 0:
            raise InputError(f"Dataset.gem is empty ({gem.shape[0]} samples x {gem.shape[1]} genes).")
        if not gem.index.is_unique:
            raise InputError(f"Dataset.gem has duplicated sample names, e.g. "
                             f"{_examples(gem.index[gem.index.duplicated()])}.")
        if not gem.columns.is_unique:
            raise InputError(f"Dataset.gem has duplicated gene names, e.g. "
                             f"{_examples(gem.columns[gem.columns.duplicated()])}; make them unique.")
        non_numeric = [c for c, t in gem.dtypes.items() if not pd.api.types.is_numeric_dtype(t)
                       or pd.api.types.is_bool_dtype(t)]
        if non_numeric:
            raise InputError(f"Dataset.gem has {len(non_numeric)} non-numeric gene column(s) (e.g. "
                             f"{_examples(non_numeric)}); it must hold expression values only.")
        if not labels.index.is_unique:
            raise InputError(f"Dataset.labels has duplicated sample names, e.g. "
                             f"{_examples(labels.index[labels.index.duplicated()])}.")
        if len(labels) != len(gem) or not labels.index.isin(gem.index).all():
            missing = gem.index[~gem.index.isin(labels.index)]
            raise InputError(f"Dataset.labels must have one label per GEM sample ({len(missing)} of {len(gem)} samples "
                             f"have none, e.g. {_examples(missing)}; {len(labels)} labels); use align_labels first.")
        labels = labels.reindex(gem.index)
        if labels.isna().any():
            raise InputError(f"Dataset.labels has {int(labels.isna().sum())} missing label(s) (e.g. sample "
                             f"{_examples(labels.index[labels.isna()])}); drop those samples.")
        labels = labels.astype(str)
        counts = labels.value_counts()
        if len(counts) < 2:
            raise InputError(f"Only one class ('{counts.index[0]}') in the labels; TSPG needs at least two classes.")
        small = counts[counts < MIN_CLASS_SIZE]
        if len(small):
            listing = ", ".join(f"'{k}' ({v})" for k, v in small.items())
            raise InputError(f"{len(small)} class(es) have fewer than {MIN_CLASS_SIZE} samples, too few to split into "
                             f"training and held-out parts: {listing}; remove those samples from the labels.")
        self.labels = labels

    @property
    def classes(self) -> list[str]:
        """The sorted class names."""
        return sorted(self.labels.unique())

    @property
    def genes(self) -> list[str]:
        """The gene names, in column order."""
        return list(self.gem.columns)

    def check_targets(self, targets: list[str]) -> None:
        """Raise :class:`InputError` unless every target is a class of the data."""
        check_targets(targets, self.classes)


def _early_gene_selection(data: Path, transpose: bool, gene_sets: str | Path | None,
                          gene_set_names: list[str] | None) -> tuple[list[str], list[str]] | None:
    """For a samples x genes text GEM and chosen gene sets: the file's genes and the genes to keep.

    Read from the GEM's header and the GMT before the matrix, so that a GTEx-sized file never holds its other
    genes in memory. None whenever anything is off; the normal path then raises its usual errors.
    """
    if transpose or gene_sets is None or not gene_set_names:
        return None
    genes = header_genes(data)
    if genes is None or len(set(genes)) != len(genes):
        return None
    try:
        library = read_gmt(gene_sets, genes=genes)
    except (InputError, OSError, UnicodeDecodeError):
        return None
    if any(name not in library for name in gene_set_names):
        return None
    find = gene_lookup(genes)
    wanted = {find(g) for name in gene_set_names for g in library[name]}
    keep = [g for g in genes if g in wanted]
    return (genes, keep) if keep else None


def from_anndata(adata: object, labels_key: str, *, layer: str | None = None, use_raw: bool = False,
                 gene_sets: str | Path | None = None, gene_set_names: list[str] | None = None,
                 impute: Impute = "none") -> Dataset:
    """A :class:`Dataset` from an AnnData object in memory (no file written or read but the GMT).

    Parameters
    ----------
    adata
        An :class:`anndata.AnnData`: samples (cells) x genes.
    labels_key
        The ``.obs`` column holding the class of each sample.
    layer, use_raw
        Use ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``.X``.
    gene_sets, gene_set_names, impute
        As :func:`load_dataset`.

    Returns
    -------
    The validated :class:`Dataset`; its ``sources`` say it came from memory.

    Examples
    --------
    >>> import anndata as ad
    >>> from tspg.data import from_anndata, make_atlas
    >>> atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=10, n_markers=5, seed=0)
    >>> adata = ad.AnnData(atlas.gem.to_numpy(), obs=atlas.labels.rename("tissue").to_frame())
    >>> adata.var_names = list(atlas.gem.columns)
    >>> from_anndata(adata, "tissue").classes
    ['Heart - Left Ventricle', 'Liver', 'Lung']
    """
    if impute not in IMPUTE_METHODS:
        raise InputError(f"Unknown `impute` '{impute}'; choose one of {', '.join(IMPUTE_METHODS)}.")
    gem = anndata_matrix(adata, layer, use_raw).copy()
    labels = labels_from_obs(adata.obs, labels_key, "the AnnData object")
    report: dict = {}
    if gene_set_names and gene_sets is None:
        raise InputError("`gene_set_names` needs `gene_sets=GMT_FILE` to say where the sets are defined.")
    if gene_sets is not None:
        if not gene_set_names:
            raise InputError("`gene_sets` given without `gene_set_names=NAME`.")
        library = read_gmt(gene_sets, genes=list(gem.columns))
        selected, report = select_gene_sets(library, gene_set_names, list(gem.columns), str(gene_sets))
        gem = gem[selected]
    gem = _check_finite(gem, impute, "the AnnData object")
    sources = {"data": "AnnData in memory", "labels_key": labels_key, "layer": layer, "use_raw": use_raw}
    if gene_sets is not None:
        sources["gene_sets"] = str(gene_sets)
    return Dataset(gem=gem, labels=labels, gene_set_report=report, sources=sources)


def _check_finite(gem: pd.DataFrame, impute: str, data: object) -> pd.DataFrame:
    """Stop at missing/infinite values unless ``impute`` says what to do (they become NaN, or their genes go)."""
    values = gem.to_numpy()
    bad = ~np.isfinite(values)
    if not bad.any():
        return gem
    n_bad = int(bad.sum())
    r, c = np.argwhere(bad)[0]
    where = f"e.g. sample '{gem.index[r]}', gene '{gem.columns[c]}'"
    if impute == "none":
        raise InputError(f"{data}: {n_bad} missing or infinite value(s) ({where}); fill them, or pass "
                         "`impute=mean|median|zero|drop-genes`.")
    np.copyto(values, np.nan, where=bad)
    gem = pd.DataFrame(values, index=gem.index, columns=gem.columns)
    if impute == "drop-genes":
        keep = ~bad.any(axis=0)
        if not keep.any():
            raise InputError(f"{data}: every gene has a missing value; `impute=drop-genes` would drop all.")
        log.warning("dropping %d gene(s) with missing values", int((~keep).sum()))
        return gem.loc[:, keep]
    log.warning("%d missing value(s) will be filled with the training part's %s", n_bad, impute)
    return gem


def _gct_gene_filter(data: Path, gene_sets: str | Path | None,
                     gene_set_names: list[str] | None) -> Callable[[str], bool] | None:
    """For a ``.gct`` GEM and chosen gene sets: a test of a row's gene name, so only the sets' rows are read.

    (:class:`tspg.data._genesets.GeneSetRows`). None whenever anything is off (the normal path then raises its
    usual errors).
    """
    if gem_format(data) != "gct" or gene_sets is None or not gene_set_names:
        return None
    try:
        library = read_gmt(gene_sets)
    except (InputError, OSError, UnicodeDecodeError):
        return None
    if any(name not in library for name in gene_set_names):
        return None
    return GeneSetRows(g for name in gene_set_names for g in library[name])


def load_dataset(
    data: str | Path,
    labels: str | Path | None = None,
    *,
    labels_key: str | None = None,
    transpose: bool = False,
    layer: str | None = None,
    use_raw: bool = False,
    gene_sets: str | Path | None = None,
    gene_set_names: list[str] | None = None,
    allow_missing_labels: bool = False,
    impute: Impute = "none",
    hash_inputs: bool = True,
    gene_id_column: str | None = None,
) -> Dataset:
    """Read and validate a GEM and its labels.

    Parameters
    ----------
    data
        The GEM file (see :func:`tspg.data.read_gem` for formats).
    labels
        A labels file (two-column text or ``.cls``). For ``.h5ad`` data, ``labels_key`` may be given instead.
    labels_key
        An ``.obs`` column of the ``.h5ad`` data holding the labels.
    transpose, layer, use_raw
        Passed to :func:`tspg.data.read_gem`.
    gene_sets, gene_set_names
        A GMT library and the set names whose union of genes to keep (all genes when not given).
    allow_missing_labels
        Use only the samples that both files have instead of stopping.
    impute
        What to do with NaN/inf values: ``none`` (stop with an error), ``drop-genes`` (drop genes that have
        any), or fill them with ``zero`` or the training part's per-gene ``mean``/``median`` (at split time).
    hash_inputs
        Record SHA-256 digests of the input files.
    gene_id_column
        For a ``.gct`` GEM: the column naming the genes, ``Name`` (default) or ``Description`` (see
        :func:`tspg.data.read_gem`).

    Returns
    -------
    The validated :class:`Dataset`.
    """
    if impute not in IMPUTE_METHODS:
        raise InputError(f"Unknown `impute` '{impute}'; choose one of {', '.join(IMPUTE_METHODS)}.")
    data = Path(data)
    if labels is None and labels_key is None:
        raise InputError("No labels given: pass `labels=FILE`, or `labels_key=COLUMN` for an .h5ad GEM.")
    if labels is not None and labels_key is not None:
        raise InputError("Pass either `labels` or `labels_key`, not both.")
    all_genes = None
    if labels_key is not None:
        if gem_format(data) != "h5ad":
            raise InputError("`labels_key` reads an .obs column and needs an .h5ad GEM; use `labels=FILE`.")
        if not data.exists():
            raise InputError(f"{data}: no such file.")
        if transpose:
            raise InputError("`transpose` does not apply to .h5ad files (AnnData is always cells x genes).")
        gem, obs = read_h5ad_matrix(data, layer=layer, use_raw=use_raw)
        gem = gem.copy()
        lab = labels_from_obs(obs, labels_key, str(data))
    else:
        all_genes = _early_gene_selection(data, transpose, gene_sets, gene_set_names)
        keep = None if all_genes is None else all_genes[1]
        gem = read_gem(data, transpose=transpose, layer=layer, use_raw=use_raw, genes=keep,
                       gene_id_column=gene_id_column, gene_filter=_gct_gene_filter(data, gene_sets, gene_set_names))
        lab = read_labels(labels, samples=list(gem.index))
    if not gem.index.is_unique:
        raise InputError(f"{data}: duplicated sample names, e.g. {_examples(gem.index[gem.index.duplicated()])}.")
    gem, lab = align_labels(gem, lab, allow_missing=allow_missing_labels)

    report: dict = {}
    if gene_set_names and gene_sets is None:
        raise InputError("`gene_set_names` needs `gene_sets=GMT_FILE` to say where the sets are defined.")
    if gene_sets is not None:
        genes_in_file = list(gem.columns) if all_genes is None else all_genes[0]
        library = read_gmt(gene_sets, genes=genes_in_file)
        if not gene_set_names:
            raise InputError(f"`gene_sets` given without `gene_set_names=NAME`; choose one or more of the "
                             f"{len(library)} "
                             f"sets in {gene_sets} (e.g. {', '.join(list(library)[:3])}).")
        selected, report = select_gene_sets(library, gene_set_names, genes_in_file, str(gene_sets))
        if list(gem.columns) != selected:
            gem = gem[selected]

    gem = _check_finite(gem, impute, data)

    sources = {"data": str(data)}
    if labels is not None:
        sources["labels"] = str(labels)
    if gene_sets is not None:
        sources["gene_sets"] = str(gene_sets)
    if hash_inputs:
        sources["sha256"] = {k: file_sha256(v) for k, v in list(sources.items())}
    return Dataset(gem=gem, labels=lab.astype(str), gene_set_report=report, sources=sources)


def check_split_sizes(test_size: float, val_size: float) -> None:
    """Raise :class:`InputError` unless ``0 < test_size < 1`` and ``0 <= val_size < 1``."""
    if isinstance(test_size, bool) or not isinstance(test_size, int | float) or not 0 < test_size < 1:
        raise InputError(f"`test_size` must be between 0 and 1, not {test_size!r}.")
    if isinstance(val_size, bool) or not isinstance(val_size, int | float) or not 0 <= val_size < 1:
        raise InputError(f"`val_size` must be in [0, 1), not {val_size!r}.")


def stratified_split(
    labels: pd.Series, *, test_size: float = 0.2, val_size: float = 0.1, seed: int = 0
) -> pd.Series:
    """Split samples per class into ``train``, ``val`` (from the training part) and ``test``.

    Per class of n samples: ``round(test_size * n)`` go to test, but at least 1 and at most ``n - 2`` (so that
    every class keeps two training samples, which the target distribution needs); of the rest,
    ``round(val_size * rest)`` go to val when at least two training samples remain. The validation part is
    what early stopping and checkpoint selection look at; the test part is only ever reported.

    Parameters
    ----------
    labels
        One label per sample.
    test_size, val_size
        Fractions, see above.
    seed
        Seed of the shuffle.

    Returns
    -------
    ``"train"``, ``"val"`` or ``"test"`` per sample, in the order of ``labels``.
    """
    check_split_sizes(test_size, val_size)
    rng = np.random.default_rng(seed)
    part = np.full(len(labels), "train", dtype=object)
    codes = labels.to_numpy()
    for cls in sorted(labels.unique()):
        idx = np.flatnonzero(codes == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, min(int(round(test_size * len(idx))), len(idx) - 2))
        rest = len(idx) - n_test
        n_val = int(round(val_size * rest))
        if rest - n_val < 2:
            n_val = 0
        part[idx[:n_test]] = "test"
        part[idx[n_test:n_test + n_val]] = "val"
    return pd.Series(part, index=labels.index, name="part")


@dataclass
class MinMaxScaler:
    """Per-gene MinMax scaling to [0, 1] fitted on the training part only.

    Genes that are constant in the training part get a range of 1, so they scale to ``x - min`` (0 on the
    training data) and never divide by zero.
    """

    data_min: np.ndarray
    data_range: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> MinMaxScaler:
        """Fit on samples x genes values."""
        lo = np.min(x, axis=0).astype(np.float32)
        rng = (np.max(x, axis=0) - lo).astype(np.float32)
        rng[rng == 0] = 1.0
        return cls(lo, rng)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Original units -> scaled units (float32)."""
        out = x - self.data_min
        out /= self.data_range  # in place: one matrix-sized temporary, not two
        return out.astype(np.float32, copy=False)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Scaled units -> original units (float32)."""
        return (x * self.data_range + self.data_min).astype(np.float32)

    def inverse_transform_delta(self, d: np.ndarray) -> np.ndarray:
        """A difference in scaled units -> the same difference in original units."""
        return (d * self.data_range).astype(np.float32)


@dataclass
class Prepared:
    """The numeric form of a split data set, as training consumes it.

    Attributes
    ----------
    x
        Scaled values (samples x genes, float32) of every sample.
    y
        Class index per sample.
    part
        ``train``/``val``/``test`` per sample.
    scaler
        The scaler fitted on the training part.
    fill
        Per-gene fill values for missing data (NaN when no imputation).
    """

    x: np.ndarray
    y: np.ndarray
    part: np.ndarray
    scaler: MinMaxScaler
    fill: np.ndarray


def fill_missing(values: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Replace NaN/inf cells by the per-gene ``fill`` values (in place when possible)."""
    bad = ~np.isfinite(values)
    if bad.any():
        values = np.where(bad, fill[None, :], values).astype(np.float32)
    return values


def prepare(dataset: Dataset, classes: list[str], part: pd.Series, impute: Impute = "none",
            scaler: MinMaxScaler | None = None, fill: np.ndarray | None = None,
            genes: list[str] | None = None, transform: str = "none") -> Prepared:
    """Transform, impute with training statistics, fit the scaler on the training part and scale every sample.

    Given ``scaler`` and ``fill`` (a run's own), they are used as they are instead of being fitted again; then
    ``genes`` (the run's) says which of the data's genes they belong to, matched by name (:func:`match_genes`),
    so data in another gene order are scaled gene by gene, never column by column. ``transform``
    (:data:`tspg.data.TRANSFORMS`) is applied to the values first (:func:`tspg.data.apply_transform`); fill
    values and the scaler are in the transformed units.
    """
    if scaler is not None and genes is None:
        raise ValueError("prepare: a fitted scaler needs the genes it was fitted on (genes=...)")
    part = part.reindex(dataset.gem.index)
    if part.isna().any():
        raise InputError(f"{int(part.isna().sum())} sample(s) of the data are not in the run's split; use the data "
                         "the run was trained on.")
    unknown = ~dataset.labels.isin(classes)
    if unknown.any():
        raise InputError(f"{int(unknown.sum())} sample(s) have labels the run does not know (e.g. "
                         f"'{dataset.labels[unknown].iloc[0]}'); use the labels the run was trained on.")
    gem = dataset.gem if genes is None else in_gene_order(dataset.gem, genes)
    values = apply_transform(gem.to_numpy(dtype=np.float32), transform)
    is_train = (part == "train").to_numpy()
    if scaler is not None:
        if fill is not None and not np.isnan(fill).all():
            values = fill_missing(values, fill)
        index = {c: i for i, c in enumerate(classes)}
        y = dataset.labels.map(index).to_numpy(dtype=np.int64)
        full_fill = fill if fill is not None else np.full(values.shape[1], np.nan, np.float32)
        return Prepared(x=scaler.transform(values), y=y, part=part.to_numpy(), scaler=scaler, fill=full_fill)
    train = values[is_train]
    if impute in ("mean", "median"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": all-NaN genes get 0
            fill = (np.nanmean(train, axis=0) if impute == "mean" else np.nanmedian(train, axis=0))
        fill = np.nan_to_num(fill.astype(np.float32), nan=0.0)
    elif impute == "zero":
        fill = np.zeros(values.shape[1], dtype=np.float32)
    else:
        fill = np.full(values.shape[1], np.nan, dtype=np.float32)
    if impute in ("mean", "median", "zero"):
        values = fill_missing(values, fill)
    scaler = MinMaxScaler.fit(values[is_train])
    index = {c: i for i, c in enumerate(classes)}
    y = dataset.labels.map(index).to_numpy(dtype=np.int64)
    return Prepared(x=scaler.transform(values), y=y, part=part.to_numpy(), scaler=scaler, fill=fill)
