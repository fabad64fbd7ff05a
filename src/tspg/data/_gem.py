"""Readers for gene expression matrices (GEMs), chosen by file extension.

Every reader returns a float32 :class:`pandas.DataFrame` of samples x genes whose index holds the sample
names and whose columns hold the gene names.
"""

from __future__ import annotations

import gzip
import logging
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tspg._memory import trim_heap
from tspg._options import GENE_ID_COLUMNS
from tspg.data._errors import InputError

log = logging.getLogger(__name__)

GEM_FORMATS = ("tsv", "txt", "csv", "npy", "parquet", "gct", "h5ad")


def gem_format(path: str | Path) -> str:
    """Return the format name of a GEM file from its extension (``.gz`` is looked through).

    Parameters
    ----------
    path
        The file name.

    Returns
    -------
    One of :data:`GEM_FORMATS`.
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext not in GEM_FORMATS:
        raise InputError(
            f"{path}: unknown GEM format '.{ext}'; use one of "
            + ", ".join("." + f for f in GEM_FORMATS)
            + " (text files may be gzipped)."
        )
    return ext


def _open_text(path: Path):  # noqa: ANN202
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")  # -sig: a byte-order mark is not text
    return open(path, encoding="utf-8-sig")


def _first_line(path: Path) -> str:
    with _open_text(path) as fh:
        return fh.readline().rstrip("\r\n")


def _check_unique(names: pd.Index | list[str], what: str, path: Path, hint: str) -> None:
    index = pd.Index(names)
    if not index.is_unique:
        dup = index[index.duplicated()].unique()
        examples = ", ".join(map(str, dup[:5]))
        raise InputError(f"{path}: {len(dup)} duplicated {what} name(s), e.g. {examples}; {hint}.")


def _to_float32(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Convert every column to float32, naming the first non-numeric cell if there is one."""
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{path}: the GEM is empty ({frame.shape[0]} samples x {frame.shape[1]} genes).")
    bad = []
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes]
    for i in np.flatnonzero(~np.asarray(numeric, dtype=bool)):
        column = frame.iloc[:, i]
        coerced = pd.to_numeric(column, errors="coerce")
        wrong = column[coerced.isna() & column.notna()]
        if len(wrong):
            bad.append((frame.columns[i], wrong.index[0], wrong.iloc[0]))
    if bad:
        col, row, value = bad[0]
        raise InputError(
            f"{path}: non-numeric value {value!r} at sample '{row}', gene '{col}' "
            f"({len(bad)} column(s) affected); every expression value must be a number (use NA for missing)."
        )
    values = frame.to_numpy(dtype=np.float32, copy=False)
    return pd.DataFrame(values, index=frame.index.astype(str), columns=frame.columns.astype(str))


# The fast reader reads the file READ_BYTES at a time and parses the numbers of FAST_CHUNK_BYTES of wanted rows at
# once: together they bound its working memory besides the result (about 3x FAST_CHUNK_BYTES).
READ_BYTES = 1 << 20
FAST_CHUNK_BYTES = 1 << 20
NA_VALUES = ["NA", "NaN", "nan", ""]


def _count_lines(path: Path) -> int | None:
    """Newlines in an uncompressed file (an upper bound on its rows; a fast scan), None for gzip files."""
    if path.name.lower().endswith(".gz"):
        return None
    n = 0
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(1 << 24), b""):
            n += buf.count(b"\n")
    return n + 1


def _read_numeric_rows(
    path: Path, sep: str, skip: int, n_lead: int, n_values: int, keep: np.ndarray | None = None,
    name_field: int = 0, wanted: Callable[[str], bool] | None = None, max_rows: int | None = None,
) -> tuple[list[str], np.ndarray] | None:
    """Fast reader of a delimited text matrix: rows of ``n_lead`` name fields, then ``n_values`` numbers.

    Each row's name fields are found in a reused read buffer; the numbers of the wanted rows are copied into a
    second reused buffer and, about ``FAST_CHUNK_BYTES`` at a time, parsed at once by pyarrow's CSV reader as
    one column (wide files are its slow case when read as a table: its cost grows with columns x blocks), on
    this thread and from the system allocator, whose free pages are given back after each batch. Numbers are
    parsed as float64 and rounded to float32, as pandas does, and stored straight into one float32 matrix, so
    the text is never held whole and the matrix is never copied: it is allocated (not touched: untouched pages
    cost no memory) for an upper bound on the rows, ``max_rows`` (a GCT's header) or the file's line count, and
    trimmed in place to the rows read at the end; without a bound it grows by doubling.

    Returns
    -------
    The name field ``name_field`` (0: the first) of every row and the rows x values float32 matrix (only the
    columns ``keep`` when given; only the rows whose name ``wanted`` accepts, when given: the others' numbers are
    never parsed, so a GTEx-sized GCT read for one gene set holds only that set's rows), or None when the file
    needs the general reader: quotes, rows of the wrong length, an empty name or anything pyarrow does not parse
    as a number (the general reader then reads it or names the problem).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep_b = sep.encode()
    width = n_values if keep is None else len(keep)
    if max_rows is None and wanted is None:
        lines = _count_lines(path)
        max_rows = None if lines is None else max(lines - skip, 0)
    try:  # address space only: a machine that does not overcommit may refuse it, then grow by doubling
        out = np.empty((max_rows if max_rows is not None else 256, width), dtype=np.float32)
    except MemoryError:
        out = np.empty((256, width), dtype=np.float32)
    names: list[str] = []
    read_opts = pacsv.ReadOptions(column_names=["v"], block_size=4 * FAST_CHUNK_BYTES,  # one block per chunk
                                  use_threads=False)  # so: no gain from threads, whose malloc arenas keep pages
    parse_opts = pacsv.ParseOptions(ignore_empty_lines=False, quote_char=False)
    convert_opts = pacsv.ConvertOptions(column_types={"v": pa.float64()}, null_values=NA_VALUES,
                                        strings_can_be_null=False)
    # pyarrow's default pool (mimalloc) keeps the pages of freed blocks: after a GTEx-sized GCT read for 200
    # genes it held 35 MB more than the system allocator, which gives the parser's blocks back.
    pool = pa.system_memory_pool()
    rows = 0
    # Two buffers, allocated once and reused, hold all the text: what was read (whole lines, the last one
    # carried over to the next read) and the wanted rows' numbers waiting to be parsed. Allocating them afresh
    # per chunk let glibc's allocator keep the freed chunks' pages: 35 MB more at the peak of a GTEx-sized read.
    text = bytearray(READ_BYTES)
    body = bytearray(FAST_CHUNK_BYTES + READ_BYTES)
    n_text = n_body = n_pending = 0  # filled bytes of ``text`` and ``body``; rows waiting in ``body``

    def flush() -> bool:
        """Parse the rows waiting in ``body`` into ``out``; False when pyarrow does not parse them all."""
        nonlocal out, rows, n_body, n_pending
        view = np.frombuffer(body, dtype=np.uint8, count=n_body)
        view[view == sep_b[0]] = 10  # one number per line: pyarrow parses a single column fast
        try:
            with memoryview(body) as whole, whole[:n_body] as filled:
                column = pacsv.read_csv(pa.py_buffer(filled), read_options=read_opts, parse_options=parse_opts,
                                        convert_options=convert_opts, memory_pool=pool).column(0)
        except (pa.ArrowInvalid, ValueError):
            return False
        finally:
            del view  # ``body`` may grow only when nothing views it
        if len(column) != n_pending * n_values:
            return False
        block = column.to_numpy(zero_copy_only=False).reshape(n_pending, n_values)
        if keep is not None:
            block = block[:, keep]
        if rows + len(block) > len(out):  # no bound, or a header that says too few rows: grow by doubling
            grown = np.empty((max(2 * len(out), rows + len(block)), width), dtype=np.float32)
            grown[:rows] = out[:rows]
            out = grown
        out[rows:rows + len(block)] = block
        rows += len(block)
        n_body = n_pending = 0
        del block, column
        trim_heap()
        return True

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for _ in range(skip):
            fh.readline()
        eof = False
        while not eof:
            if n_text == len(text):  # a line longer than the buffer: grow it
                text.extend(bytes(len(text)))
            with memoryview(text) as whole, whole[n_text:] as free:
                got = fh.readinto(free)
            eof = got == 0
            n_text += got
            end_of_lines = n_text if eof else text.rfind(b"\n", 0, n_text) + 1
            if text.find(b'"', 0, end_of_lines) != -1:
                return None
            pos = 0
            while pos < end_of_lines:
                stop = text.find(b"\n", pos, end_of_lines)
                stop = end_of_lines if stop == -1 else stop
                start, pos = pos, stop + 1
                if stop > start and text[stop - 1] == 13:  # \r\n
                    stop -= 1
                if stop == start:
                    continue  # blank lines are skipped, as pandas does
                fields = [start - 1]
                for _ in range(n_lead):
                    at = text.find(sep_b, fields[-1] + 1, stop)
                    if at == -1:
                        return None
                    fields.append(at)
                first = fields[n_lead] + 1
                if fields[name_field + 1] == fields[name_field] + 1 or text.count(sep_b, first, stop) != n_values - 1:
                    return None
                try:
                    name = text[fields[name_field] + 1:fields[name_field + 1]].decode()
                except UnicodeDecodeError:
                    return None
                if wanted is not None and not wanted(name):
                    continue
                names.append(name)
                size = stop - first
                if n_body + size + 1 > len(body):  # one row longer than the batch: grow it
                    body.extend(bytes(n_body + size + 1 - len(body)))
                with memoryview(text) as whole, whole[first:stop] as row:
                    body[n_body:n_body + size] = row
                body[n_body + size] = 10
                n_body += size + 1
                n_pending += 1
            text[:n_text - end_of_lines] = text[end_of_lines:n_text]  # the unfinished line, to the front
            n_text -= end_of_lines
            if n_pending and (eof or n_body >= FAST_CHUNK_BYTES) and not flush():
                return None
    if rows == 0:
        return None if wanted is None else (names, np.empty((0, width), dtype=np.float32))
    if rows < len(out):
        out.resize((rows, width), refcheck=False)  # trimmed in place (a realloc to less: nothing is copied)
    return names, out


def header_genes(path: str | Path) -> list[str] | None:
    """The gene names of a samples x genes ``.tsv``/``.txt``/``.csv`` GEM, read from its header line alone.

    None for other formats or when the header cannot be read (:func:`read_gem` then reports the problem).
    """
    path = Path(path)
    try:
        fmt = gem_format(path)
        if fmt not in ("tsv", "txt", "csv"):
            return None
        header = _header_fields(path, "," if fmt == "csv" else "\t")
    except (InputError, OSError, UnicodeDecodeError, EOFError, zlib.error):
        return None
    return [g.strip().strip('"') for g in header[1:]] if len(header) >= 2 else None


def _header_fields(path: Path, sep: str) -> list[str]:
    """The fields of a text GEM's header line; a quoted name may hold the separator ("A,alias" in a CSV)."""
    import csv

    return next(csv.reader([_first_line(path)], delimiter=sep), None) or [""]


def _read_delimited(path: Path, sep: str, genes_wanted: list[str] | None = None) -> pd.DataFrame:
    header = _header_fields(path, sep)
    if len(header) < 2:
        raise InputError(
            f"{path}: the header has {len(header)} column(s) when split on "
            f"{'tab' if sep == chr(9) else repr(sep)}; expected sample ids in the first column and one "
            "column per gene (is this the right delimiter or file extension?)."
        )
    genes = [g.strip().strip('"') for g in header[1:]]
    _check_unique(genes, "gene", path, "make gene names unique (e.g. collapse probes to genes) first")
    keep = None
    if genes_wanted is not None:
        position = {g: i for i, g in enumerate(genes)}
        if all(g in position for g in genes_wanted):
            keep = np.asarray([position[g] for g in genes_wanted], dtype=np.intp)
    fast = _read_numeric_rows(path, sep, skip=1, n_lead=1, n_values=len(genes), keep=keep)
    if fast is not None:
        samples, values = fast
        return _without_trailing_column(path, pd.DataFrame(
            values, index=pd.Index(samples, dtype=object),
            columns=pd.Index(genes_wanted if keep is not None else genes, dtype=object)))
    log.debug("%s: not a plain numeric matrix for the fast reader; reading it with pandas", path)
    try:
        frame = pd.read_csv(
            path, sep=sep, header=0, index_col=0, names=["__sample__", *genes], low_memory=False,
            na_values=["NA", "NaN", "nan", ""], keep_default_na=False, dtype={"__sample__": str},
        )
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).splitlines()[0]
        raise InputError(f"{path}: cannot parse as a {'tab' if sep == chr(9) else 'comma'}-separated "
                         f"GEM ({msg}); every row needs one sample id and one value per gene.") from None
    if list(frame.columns) != genes:  # pandas takes a first data row with one field too many as an index
        raise InputError(f"{path}: the first data row has more fields than the header ({len(header)}); every "
                         "row needs one sample id and one value per gene.")
    return _without_trailing_column(path, frame)


def _without_trailing_column(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without an empty last column of no name: a separator at the end of every line (Excel's export)."""
    if frame.shape[1] > 1 and str(frame.columns[-1]) == "" and frame.iloc[:, -1].isna().all():
        log.debug("%s: every line ends with a separator; its empty last column is not a gene", path)
        return frame.iloc[:, :-1]
    return frame


def _read_npy(path: Path) -> pd.DataFrame:
    base = str(path)[: -len(".npy")]
    rownames, colnames = Path(base + ".rownames.txt"), Path(base + ".colnames.txt")
    for p in (rownames, colnames):
        if not p.exists():
            raise InputError(
                f"{path}: a .npy GEM needs {rownames.name} (sample names) and {colnames.name} (gene names) "
                f"beside it; {p.name} is missing."
            )
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: not a numeric .npy array ({exc}).") from None
    rows = [line.rstrip("\r\n") for line in open(rownames, encoding="utf-8") if line.strip()]
    cols = [line.rstrip("\r\n") for line in open(colnames, encoding="utf-8") if line.strip()]
    if values.ndim != 2 or values.shape != (len(rows), len(cols)):
        raise InputError(
            f"{path}: array shape {values.shape} does not match {len(rows)} row names x {len(cols)} "
            "column names."
        )
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path}: the array holds {values.dtype}, not numbers.")
    return pd.DataFrame(values, index=rows, columns=cols)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 (pyarrow raises ArrowInvalid, ArrowIOError, its base ArrowException)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{path}: cannot read as .parquet ({reason}); is it a complete Parquet file?") from None
    if isinstance(frame.index, pd.RangeIndex) and len(frame.columns) and not pd.api.types.is_numeric_dtype(
        frame[frame.columns[0]]
    ):
        frame = frame.set_index(frame.columns[0])
    return frame


#: Descriptions that name no gene (GSEA's and GenePattern's ``na``, Affymetrix annotations' ``---``).
NO_SYMBOL = frozenset({"", "na", "n/a", "nan", "none", "null", "-", "--", "---"})


def _with_symbols(path: Path, names: list[str]) -> np.ndarray:
    """The rows whose Description names a gene; refuses a column that mostly does not (it holds no symbols)."""
    keep = np.array([str(n).strip().lower() not in NO_SYMBOL for n in names], dtype=bool)
    missing = len(keep) - int(keep.sum())
    if missing and missing * 2 >= len(keep):
        example = next(str(n) for n, k in zip(names, keep, strict=True) if not k)
        raise InputError(f"{path}: {missing} of {len(keep)} rows name no gene in the Description column (e.g. "
                         f"{example!r}); name genes by the Name column (leave out --gene-id-column Description).")
    if missing:
        log.warning("%s: %d of %d rows name no gene in the Description column (e.g. %r); they are left out",
                    path, missing, len(keep), next(str(n) for n, k in zip(names, keep, strict=True) if not k))
    return keep


def merge_duplicate_genes(genes: list[str], values: np.ndarray, source: str) -> tuple[list[str], np.ndarray]:
    """Rows (genes) of the same name merged into one, their per-sample mean (missing values left out).

    The rule for gene symbols that name several rows (GTEx's ``Description`` column has about 1,600 such
    symbols among 56,200 rows: read-through and paralog loci): each sample's value is the mean of those rows'
    values. The first row's place is kept. The log says how many symbols and rows were merged.

    Parameters
    ----------
    genes
        One name per row.
    values
        Rows x samples (float32).
    source
        The file, for the log line.

    Returns
    -------
    Unique names and their rows.
    """
    codes, uniques = pd.factorize(pd.Index(genes))
    if len(uniques) == len(genes):
        return genes, values
    counts = np.bincount(codes)
    dup = np.flatnonzero(counts > 1)
    first = np.unique(codes, return_index=True)[1]  # the first row of each name (codes count up from 0)
    means = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sample missing in every row of a name stays missing
        for c in dup:
            means[c] = np.nanmean(values[codes == c], axis=0)
    merged = _compact_rows(values, first)
    for c, mean in means.items():
        merged[c] = mean
    log.info("%s: %d gene names appear on more than one row (%d rows, e.g. %s); each is the mean of its rows",
             source, len(dup), int(counts[dup].sum()), ", ".join(map(str, uniques[dup[:3]])))
    return list(map(str, uniques)), merged


def _compact_rows(values: np.ndarray, rows: np.ndarray, step_bytes: int = 1 << 20) -> np.ndarray:
    """``values[rows]`` for increasing ``rows`` (``rows[i] >= i``), computed in place a few rows at a time.

    The matrix is never held twice: row ``i`` takes row ``rows[i]``, which no earlier step has overwritten (each
    step's rows, about ``step_bytes``, pass through one temporary); an array that owns its memory is then trimmed
    in place, any other is copied once.
    """
    n = len(rows)
    step = max(1, step_bytes // max(values[:1].nbytes, 1))
    for start in range(0, n, step):
        stop = min(start + step, n)
        values[start:stop] = values[rows[start:stop]]
    if values.flags.owndata and values.flags.c_contiguous:
        values.resize((n, *values.shape[1:]), refcheck=False)
        return values
    return values[:n].copy()


def _none_wanted(path: Path, wanted: Callable[[str], bool] | None, n_rows: int) -> None:
    """Stop when a row test let no row of a GCT through (naming the identifier styles where the test can)."""
    if wanted is not None and n_rows == 0:
        why = getattr(wanted, "why_none", None)
        raise InputError(f"{path}: none of its rows is a gene of the chosen gene set(s)"
                         + (f"; {why()}." if why else "."))


def _read_gct(path: Path, gene_id_column: str = "Name", wanted: Callable[[str], bool] | None = None) -> pd.DataFrame:
    with _open_text(path) as fh:
        version = fh.readline().strip()
        dims = fh.readline().strip().split("\t")
        header = fh.readline().rstrip("\r\n").split("\t")
    if not version.startswith("#1."):
        raise InputError(f"{path}: not a GCT file (first line is {version[:20]!r}, expected '#1.2').")
    if len(header) < 3 or header[0].upper() != "NAME":
        raise InputError(f"{path}: GCT line 3 must start with 'NAME<TAB>Description<TAB>' then sample names.")
    samples = header[2:]
    _check_unique(samples, "sample", path, "sample names (GCT columns) must be unique")
    by_description = gene_id_column == "Description"
    header_rows = int(dims[0]) if len(dims) >= 2 and dims[0].isdigit() else None
    fast = _read_numeric_rows(path, "\t", skip=3, n_lead=2, n_values=len(samples), name_field=int(by_description),
                              wanted=wanted, max_rows=header_rows)
    if fast is not None:
        genes, values = fast
        del fast  # the matrix has one owner, so that merging duplicates can trim it in place
        _none_wanted(path, wanted, len(genes))
        if by_description:
            keep = _with_symbols(path, genes)
            if not keep.all():
                rows = np.flatnonzero(keep)
                genes, values = [genes[i] for i in rows], _compact_rows(values, rows)
            genes, values = merge_duplicate_genes(genes, values, str(path))
        _check_unique(genes, "gene", path, "collapse duplicated probes to one row per gene first (or pass "
                      "--gene-id-column Description to name genes by that column)")
        if wanted is None and header_rows is not None and header_rows != len(genes):
            log.warning("%s: header says %s genes but the file has %d rows", path, dims[0], len(genes))
        return pd.DataFrame(values.T, index=pd.Index(samples, dtype=object), columns=pd.Index(genes, dtype=object))
    try:
        frame = pd.read_csv(
            path, sep="\t", skiprows=2, header=0, index_col=0, low_memory=False,
            names=["__gene__", "__desc__", *samples], na_values=["NA", "NaN", "nan", ""], keep_default_na=False,
            dtype={"__gene__": str, "__desc__": str},
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path}: cannot parse as GCT ({str(exc).splitlines()[0]}); every row below line 3 needs "
                         f"a name, a description and {len(samples)} values (one per sample).") from None
    if list(frame.columns) != ["__desc__", *samples]:  # a first data row with one field too many
        raise InputError(f"{path}: a data row has more fields than line 3 ({len(header)}); every row needs a name, "
                         f"a description and {len(samples)} values.")
    if wanted is not None:
        chosen = (frame["__desc__"].fillna("").astype(str) if by_description else frame.index.to_series()).map(wanted)
        frame = frame[chosen.to_numpy(bool)]
        _none_wanted(path, wanted, len(frame))
    if by_description:
        names = frame["__desc__"].fillna("").astype(str)
        keep = _with_symbols(path, list(names))
        frame, names = frame[keep], names[keep]
        frame = _to_float32(frame.drop(columns="__desc__"), path)
        genes, values = merge_duplicate_genes(list(names), frame.to_numpy(np.float32), str(path))
        frame = pd.DataFrame(values, index=pd.Index(genes, dtype=object), columns=frame.columns)
    else:
        frame = frame.drop(columns="__desc__")
    _check_unique(frame.index, "gene", path, "collapse duplicated probes to one row per gene first")
    if wanted is None and header_rows is not None and header_rows != len(frame):
        log.warning("%s: header says %s genes but the file has %d rows", path, dims[0], len(frame))
    frame = _to_float32(frame, path)
    return frame.T


def read_h5ad_matrix(
    path: str | Path, layer: str | None = None, use_raw: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an AnnData file and return (GEM, obs).

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Name of a layer in ``adata.layers`` to use instead of ``.X``.
    use_raw
        Use ``adata.raw.X`` (and ``adata.raw.var_names``) instead of ``.X``.

    Returns
    -------
    The samples x genes float32 matrix and the ``.obs`` table.
    """
    import anndata as ad

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # anndata's notes on an older file's layout (FutureWarning "Moving element from .uns['neighbors'] ...
            # to .obsp", OldFormatWarning "written without encoding metadata"): the file is read all the same, and a
            # file it cannot read raises
            warnings.simplefilter("ignore")
            adata = ad.read_h5ad(path)
    except Exception as exc:  # noqa: BLE001 (h5py and anndata raise OSError, KeyError, RuntimeError, their own)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{path}: cannot read as .h5ad ({reason}); is it a complete AnnData file?") from None
    return anndata_matrix(adata, layer, use_raw, str(path)), adata.obs


def anndata_matrix(adata: object, layer: str | None = None, use_raw: bool = False,
                   source: str = "the AnnData object") -> pd.DataFrame:
    """The samples x genes float32 matrix of an AnnData object: ``.X``, ``.layers[layer]`` or ``.raw.X``.

    Parameters
    ----------
    adata
        An :class:`anndata.AnnData` (in memory or read from a file).
    layer, use_raw
        As :func:`read_h5ad_matrix`.
    source
        Where it came from, for error messages.
    """
    from scipy import sparse

    if layer is not None and use_raw:
        raise InputError("Choose either `layer` or `use_raw`, not both.")
    if use_raw:
        if adata.raw is None:
            raise InputError(f"{source}: has no .raw; drop `use_raw` to use .X.")
        matrix, genes = adata.raw.X, adata.raw.var_names
    elif layer is not None:
        if layer not in adata.layers:
            valid = ", ".join(adata.layers.keys()) or "none"
            raise InputError(f"{source}: no layer '{layer}'; layers present: {valid}.")
        matrix, genes = adata.layers[layer], adata.var_names
    else:
        matrix, genes = adata.X, adata.var_names
    if matrix is None:
        raise InputError(f"{source}: .X is empty (None); pass `layer=` or `use_raw=True`.")
    if sparse.issparse(matrix):
        matrix = matrix.toarray()
    frame = pd.DataFrame(np.asarray(matrix, dtype=np.float32), index=adata.obs_names.astype(str),
                         columns=pd.Index(genes).astype(str))
    _check_unique(frame.index, "sample", source, "make .obs_names unique (adata.obs_names_make_unique()) first")
    _check_unique(frame.columns, "gene", source, "make gene names unique (adata.var_names_make_unique()) first")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{source}: the GEM is empty ({frame.shape[0]} samples x {frame.shape[1]} genes).")
    return frame


def read_gem(
    path: str | Path,
    *,
    transpose: bool = False,
    layer: str | None = None,
    use_raw: bool = False,
    genes: list[str] | None = None,
    gene_id_column: str | None = None,
    gene_filter: Callable[[str], bool] | None = None,
) -> pd.DataFrame:
    """Read a GEM file into a samples x genes float32 DataFrame.

    The format follows the extension: ``.tsv``/``.txt`` (tab-separated, optionally ``.gz``), ``.csv``,
    ``.npy`` with ``<name>.rownames.txt`` and ``<name>.colnames.txt`` beside it, ``.parquet``, ``.gct``
    (genes x samples, transposed on reading) and ``.h5ad`` (``.X``, a layer, or ``.raw``).

    Parameters
    ----------
    path
        The GEM file.
    transpose
        The text, ``.npy`` or ``.parquet`` file is genes x samples; transpose it.
    layer, use_raw
        For ``.h5ad``: read ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``.X``.
    genes
        Keep only these genes, in this order (they must be in the file). A samples x genes text file then never
        holds the other genes in memory.
    gene_id_column
        For ``.gct``: the column that names the genes, ``Name`` (the default) or ``Description`` (e.g. GTEx's
        symbols beside its versioned Ensembl IDs). Rows that share a Description are merged into their mean
        (:func:`merge_duplicate_genes`; the log says how many).
    gene_filter
        For ``.gct``: read only the rows (genes) whose name it accepts; the numbers of the others are never
        parsed nor held (a GTEx-sized file read for one gene set).

    Returns
    -------
    Samples x genes, float32, sample names as index and gene names as columns. Missing values are NaN.

    Examples
    --------
    >>> import tspg.data, pandas as pd, tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "gem.tsv")
    >>> pd.DataFrame({"G1": [1.0, 2.0], "G2": [3.0, 4.0]}, index=["s1", "s2"]).to_csv(p, sep="\\t")
    >>> tspg.data.read_gem(p).shape
    (2, 2)
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    fmt = gem_format(path)
    if fmt != "h5ad" and (layer is not None or use_raw):
        raise InputError("`layer` and `use_raw` apply to .h5ad files only.")
    if gene_id_column is not None and gene_id_column not in GENE_ID_COLUMNS:
        raise InputError(f"Unknown `gene_id_column` {gene_id_column!r}; choose {' or '.join(GENE_ID_COLUMNS)}.")
    if gene_filter is not None and fmt != "gct":
        raise InputError("`gene_filter` applies to .gct files only.")
    if gene_id_column is not None and fmt != "gct":
        raise InputError("`gene_id_column` applies to .gct files only (other formats have one gene name per "
                         "column).")
    try:
        if fmt in ("tsv", "txt", "csv"):
            frame = _read_delimited(path, "," if fmt == "csv" else "\t", None if transpose else genes)
        elif fmt == "npy":
            frame = _read_npy(path)
        elif fmt == "parquet":
            frame = _read_parquet(path)
        elif fmt == "gct":
            if transpose:
                raise InputError("`transpose` does not apply to .gct files (GCT is always genes x samples).")
            frame = _read_gct(path, gene_id_column or "Name", gene_filter)
        else:
            if transpose:
                raise InputError("`transpose` does not apply to .h5ad files (AnnData is always cells x genes).")
            frame, _ = read_h5ad_matrix(path, layer=layer, use_raw=use_raw)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); is the "
                         "extension right (gzipped files need .gz)?") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot decompress ({exc}); is it a complete gzip file?") from None
    if transpose:
        frame = frame.T
    _check_unique(frame.index, "sample", path, "every sample needs its own name"
                  + ("" if transpose else " (is the file genes x samples? then pass `transpose=True`)"))
    _check_unique(frame.columns, "gene", path, "make gene names unique (e.g. collapse probes to genes) first")
    if genes is not None and list(frame.columns) != list(genes):
        missing = pd.Index(genes).difference(frame.columns)
        if len(missing):
            raise InputError(f"{path}: {len(missing)} requested gene(s) are not in the GEM, e.g. "
                             f"{', '.join(map(str, missing[:3]))}.")
        frame = frame[list(genes)]
    frame = _to_float32(frame, path)
    frame.index.name, frame.columns.name = None, None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{path}: the GEM is empty ({frame.shape[0]} samples x {frame.shape[1]} genes).")
    log.info("read %s: %d samples x %d genes", path.name, frame.shape[0], frame.shape[1])
    return frame

