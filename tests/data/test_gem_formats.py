"""Every GEM format reads to the same samples x genes float32 matrix; bad files give one-line InputErrors."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tspg.data import GEM_FORMATS, InputError, gem_format, read_gem

anndata = pytest.importorskip("anndata")


def _adata(gem: pd.DataFrame, x: np.ndarray | None = None):  # noqa: ANN202
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = anndata.AnnData(X=(gem.to_numpy() if x is None else x).copy())
        a.obs_names = list(gem.index)
        a.var_names = list(gem.columns)
    return a


def _gct(gem: pd.DataFrame, path: Path) -> Path:
    lines = ["#1.2", f"{gem.shape[1]}\t{gem.shape[0]}", "NAME\tDescription\t" + "\t".join(gem.index)]
    for gene in gem.columns:
        lines.append(f"{gene}\tna\t" + "\t".join(repr(float(v)) for v in gem[gene]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _write(fmt: str, gem: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    """Write ``gem`` in format ``fmt``; return the path and the read_gem keyword arguments it needs."""
    if fmt in ("tsv", "txt", "csv"):
        p = folder / f"gem.{fmt}"
        gem.to_csv(p, sep="," if fmt == "csv" else "\t", index_label="sample")
        return p, {}
    if fmt == "tsv.gz":
        p = folder / "gem.tsv.gz"
        with gzip.open(p, "wt") as fh:
            gem.to_csv(fh, sep="\t", index_label="sample")
        return p, {}
    if fmt == "npy":
        p = folder / "gem.npy"
        np.save(p, gem.to_numpy())
        (folder / "gem.rownames.txt").write_text("\n".join(gem.index) + "\n")
        (folder / "gem.colnames.txt").write_text("\n".join(gem.columns) + "\n")
        return p, {}
    if fmt == "parquet":
        p = folder / "gem.parquet"
        gem.to_parquet(p)
        return p, {}
    if fmt == "parquet-no-index":  # sample ids as an ordinary first column
        p = folder / "gem.parquet"
        gem.rename_axis("sample").reset_index().to_parquet(p, index=False)
        return p, {}
    if fmt == "gct":
        return _gct(gem, folder / "gem.gct"), {}
    if fmt == "h5ad-X":
        p = folder / "gem.h5ad"
        _adata(gem).write_h5ad(p)
        return p, {}
    if fmt == "h5ad-layer":  # .X holds something else: the reader must take the layer
        p = folder / "gem.h5ad"
        a = _adata(gem, x=np.zeros(gem.shape, dtype=np.float32))
        a.layers["logcounts"] = gem.to_numpy().copy()
        a.write_h5ad(p)
        return p, {"layer": "logcounts"}
    if fmt == "h5ad-raw":  # .X holds other values: the reader must take .raw
        p = folder / "gem.h5ad"
        a = _adata(gem)
        a.raw = a.copy()
        a.X = np.full(gem.shape, -5.0, dtype=np.float32)
        a.write_h5ad(p)
        return p, {"use_raw": True}
    if fmt == "h5ad-sparse":
        from scipy import sparse

        p = folder / "gem.h5ad"
        _adata(gem, x=sparse.csr_matrix(gem.to_numpy())).write_h5ad(p)
        return p, {}
    if fmt in ("tsv-transposed", "csv.gz-transposed"):
        p = folder / ("gem.tsv" if fmt.startswith("tsv") else "gem.csv.gz")
        gem.T.to_csv(p, sep="\t" if fmt.startswith("tsv") else ",", index_label="gene")
        return p, {"transpose": True}
    if fmt == "npy-transposed":
        p = folder / "gem.npy"
        np.save(p, gem.to_numpy().T)
        (folder / "gem.rownames.txt").write_text("\n".join(gem.columns) + "\n")
        (folder / "gem.colnames.txt").write_text("\n".join(gem.index) + "\n")
        return p, {"transpose": True}
    raise AssertionError(fmt)


FORMATS = ["tsv", "txt", "tsv.gz", "csv", "npy", "parquet", "parquet-no-index", "gct", "h5ad-X", "h5ad-layer",
           "h5ad-raw", "h5ad-sparse", "tsv-transposed", "csv.gz-transposed", "npy-transposed"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_same_matrix(fmt, tiny_gem, tmp_path):
    path, kwargs = _write(fmt, tiny_gem, tmp_path)
    got = read_gem(path, **kwargs)
    assert got.shape == (6, 4)
    assert list(got.index) == ["s1", "s2", "007", "s4", "s5", "s6"]  # order kept, "007" not turned into 7
    assert list(got.columns) == ["TP53", "GATA1", "CONST", "MYC"]
    assert (got.dtypes == np.float32).all()
    np.testing.assert_array_equal(got.to_numpy(), tiny_gem.to_numpy())
    assert got.to_numpy().min() == np.float32(-2.25)  # negative values kept
    assert got.index.name is None and got.columns.name is None
    assert all(isinstance(s, str) for s in got.index) and all(isinstance(g, str) for g in got.columns)


def test_h5ad_raw_keeps_its_own_genes(tiny_gem, tmp_path):
    """``.raw`` may hold more genes than ``.X`` (scanpy keeps all genes there); use_raw reads all of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _adata(tiny_gem.assign(EXTRA=np.float32(9.0)))
        a.raw = a.copy()
        a = a[:, list(tiny_gem.columns)].copy()
        a.X = np.zeros(tiny_gem.shape, dtype=np.float32)
        a.write_h5ad(tmp_path / "gem.h5ad")
    raw = read_gem(tmp_path / "gem.h5ad", use_raw=True)
    assert list(raw.columns) == ["TP53", "GATA1", "CONST", "MYC", "EXTRA"]
    assert raw["EXTRA"].tolist() == [9.0] * 6
    np.testing.assert_array_equal(raw.iloc[:, :4].to_numpy(), tiny_gem.to_numpy())
    x = read_gem(tmp_path / "gem.h5ad")
    assert x.shape == (6, 4) and not x.to_numpy().any()


def test_gem_format_by_extension():
    assert gem_format("a/B.TSV") == "tsv"
    assert gem_format("x.txt.gz") == "txt"
    assert gem_format("x.CSV.GZ") == "csv"
    assert gem_format("x.h5ad") == "h5ad"
    assert set(GEM_FORMATS) == {"tsv", "txt", "csv", "npy", "parquet", "gct", "h5ad"}


@pytest.mark.parametrize("name", ["gem.xlsx", "gem", "gem.tsv.zip", "gem.gz"])
def test_unknown_extension(name, tmp_path):
    p = tmp_path / name
    p.write_text("sample\tA\ns1\t1\n")
    with pytest.raises(InputError, match=r"unknown GEM format") as exc:
        read_gem(p)
    assert ".tsv" in str(exc.value) and ".h5ad" in str(exc.value)  # lists the valid ones


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"gone\.tsv: no such file"):
        read_gem(tmp_path / "gone.tsv")


def test_numeric_sample_ids_and_gene_names_stay_text(tmp_path):
    p = tmp_path / "gem.tsv"
    p.write_text("sample\t0101\t2\n001\t1\t2\n002\t3\t4\n1e3\t5\t6\n")
    got = read_gem(p)
    assert list(got.index) == ["001", "002", "1e3"]
    assert list(got.columns) == ["0101", "2"]
    gct = tmp_path / "gem.gct"
    gct.write_text("#1.2\n2\t2\nNAME\tDescription\tx\ty\n0101\tna\t1\t2\n7\tna\t3\t4\n")
    assert list(read_gem(gct).columns) == ["0101", "7"]


# ----------------------------------------------------------------------------------------------------- errors
def test_non_numeric_cell_names_sample_and_gene(tmp_path):
    p = tmp_path / "gem.tsv"
    p.write_text("sample\tA\tB\tC\ns1\t1\t2\t3\ns2\t4\tfive\t6\ns3\t7\t8\t9\n")
    with pytest.raises(InputError) as exc:
        read_gem(p)
    msg = str(exc.value)
    assert "'five'" in msg and "sample 's2'" in msg and "gene 'B'" in msg and "1 column(s)" in msg
    assert "\n" not in msg


def test_non_numeric_cell_in_transposed_file_names_the_right_cell(tmp_path):
    p = tmp_path / "gem.tsv"  # genes x samples
    p.write_text("gene\ts1\ts2\ts3\nA\t1\t2\t3\nB\t4\t5\t6\nC\t7\tx\t9\n")
    with pytest.raises(InputError) as exc:
        read_gem(p, transpose=True)
    msg = str(exc.value)
    assert "'x'" in msg and "sample 's2'" in msg and "gene 'C'" in msg


def test_duplicated_gene_names_are_caught_before_pandas_renames_them(tmp_path):
    # pandas would read the header "A A" as columns "A" and "A.1"; the reader checks the header itself.
    for name, sep in (("gem.tsv", "\t"), ("gem.csv", ",")):
        p = tmp_path / name
        p.write_text(sep.join(["sample", "A", "B", "A"]) + "\n" + sep.join(["s1", "1", "2", "3"]) + "\n")
        with pytest.raises(InputError, match=r"1 duplicated gene name\(s\), e\.g\. A;"):
            read_gem(p)


@pytest.mark.parametrize(("name", "sep", "quote"), [("gem.tsv", "\t", ""), ("gem.csv", ",", ""),
                                                    ("gem.tsv", "\t", '"')], ids=["tsv", "csv", "pandas-reader"])
def test_a_separator_at_the_end_of_every_line_is_no_gene(tmp_path, name, sep, quote):
    # Excel's export: "sample<TAB>A<TAB>B<TAB>" then "s1<TAB>1<TAB>2<TAB>"; the empty last column was a gene ''
    path = tmp_path / name
    path.write_text(f"sample{sep}A{sep}B{sep}\n{quote}s1{quote}{sep}1{sep}2{sep}\n{quote}s2{quote}{sep}3{sep}4{sep}\n")
    assert read_gem(path).to_dict() == {"A": {"s1": 1.0, "s2": 3.0}, "B": {"s1": 2.0, "s2": 4.0}}
    assert read_gem(path, transpose=True).to_dict() == {"s1": {"A": 1.0, "B": 2.0}, "s2": {"A": 3.0, "B": 4.0}}


def test_a_quoted_gene_name_may_hold_the_separator(tmp_path):
    path = tmp_path / "gem.csv"
    path.write_text('"sample","A,alias","B"\n"s1",1,2\n"s2",3,4\n')
    assert read_gem(path).to_dict() == {"A,alias": {"s1": 1.0, "s2": 3.0}, "B": {"s1": 2.0, "s2": 4.0}}
    assert read_gem(path, genes=["B", "A,alias"]).columns.tolist() == ["B", "A,alias"]


def test_a_byte_order_mark_does_not_hide_a_gct_header(tmp_path):
    gct = tmp_path / "gem.gct"
    gct.write_text("\ufeff#1.2\n2\t2\nNAME\tDescription\tx\ty\nA\tna\t1\t2\nB\tna\t3\t4\n", encoding="utf-8")
    assert read_gem(gct).to_dict() == {"A": {"x": 1.0, "y": 2.0}, "B": {"x": 3.0, "y": 4.0}}


def test_duplicated_gene_rows_in_gct(tmp_path):
    p = tmp_path / "gem.gct"
    p.write_text("#1.2\n3\t2\nNAME\tDescription\tx\ty\nA\tna\t1\t2\nB\tna\t3\t4\nA\tna\t5\t6\n")
    with pytest.raises(InputError, match=r"duplicated gene name\(s\), e\.g\. A; collapse duplicated probes"):
        read_gem(p)


@pytest.mark.filterwarnings("ignore:.*names are not unique")
def test_duplicated_names_in_h5ad(tiny_gem, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _adata(tiny_gem)
        a.var_names = ["TP53", "TP53", "CONST", "MYC"]
        a.write_h5ad(tmp_path / "genes.h5ad")
        b = _adata(tiny_gem)
        b.obs_names = ["s1", "s1", "s3", "s4", "s5", "s6"]
        b.write_h5ad(tmp_path / "samples.h5ad")
    with pytest.raises(InputError, match=r"duplicated gene name\(s\), e\.g\. TP53"):
        read_gem(tmp_path / "genes.h5ad")
    with pytest.raises(InputError, match=r"duplicated sample name\(s\), e\.g\. s1"):
        read_gem(tmp_path / "samples.h5ad")


def test_duplicated_sample_names_suggest_transpose(tmp_path):
    p = tmp_path / "gem.tsv"
    p.write_text("sample\tA\tB\ns1\t1\t2\ns2\t3\t4\ns1\t5\t6\n")
    with pytest.raises(InputError, match=r"1 duplicated sample name\(s\), e\.g\. s1;.*transpose=True"):
        read_gem(p)


def test_missing_values_become_nan(tmp_path):
    p = tmp_path / "gem.tsv"
    p.write_text("sample\tA\tB\tC\ns1\tNA\t2\tinf\ns2\t\t4\t-inf\ns3\tNaN\t6\t1\n")
    got = read_gem(p)
    assert np.isnan(got["A"]).all()
    assert got.loc["s1", "C"] == np.inf and got.loc["s2", "C"] == -np.inf
    assert got["B"].tolist() == [2.0, 4.0, 6.0]


@pytest.mark.parametrize(
    ("name", "content", "keyword"),
    [
        ("empty.tsv", "", r"header has 1 column"),
        ("comma.tsv", "sample,A,B\ns1,1,2\n", r"header has 1 column.*right delimiter"),
        ("header_only.tsv", "sample\tA\tB\n", r"GEM is empty \(0 samples x 2 genes\)"),
        ("long_row.tsv", "sample\tA\tB\ns1\t1\t2\t3\ns2\t4\t5\n", r"more fields than the header"),
        ("bad_row.tsv", "sample\tA\tB\ns1\t1\t2\ns2\t4\t5\t6\t7\n", r"cannot parse"),
        ("binary.tsv", b"\x1f\x8b\x08\x00\xff\xfe\x00\x01", r"not a UTF-8 text file"),
        ("notgzip.tsv.gz", "sample\tA\ns1\t1\n", r"cannot decompress"),
        ("bad.parquet", "not parquet", r"cannot read as \.parquet"),
        ("bad.h5ad", "not hdf5", r"cannot read as \.h5ad"),
        ("bad.gct", "#1.2\n1\t1\nGENE\tDesc\tx\nA\tna\t1\n", r"GCT line 3 must start with 'NAME"),
        ("notgct.gct", "sample\tA\ns1\t1\n", r"not a GCT file"),
    ],
)
def test_bad_files(name, content, keyword, tmp_path):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(InputError, match=keyword) as exc:
        read_gem(p)
    assert str(exc.value).startswith(str(p)) and "\n" not in str(exc.value)


def test_npy_needs_its_name_files(tiny_gem, tmp_path):
    path, _ = _write("npy", tiny_gem, tmp_path)
    (tmp_path / "gem.colnames.txt").unlink()
    with pytest.raises(InputError, match=r"gem\.colnames\.txt is missing"):
        read_gem(path)
    (tmp_path / "gem.colnames.txt").write_text("A\nB\n")
    with pytest.raises(InputError, match=r"shape \(6, 4\) does not match 6 row names x 2 column names"):
        read_gem(path)
    np.save(path, np.array(["a"] * 6 * 2).reshape(6, 2))
    with pytest.raises(InputError, match=r"not numbers"):
        read_gem(path)


def test_h5ad_layer_and_raw_errors(tiny_gem, tmp_path):
    path, _ = _write("h5ad-layer", tiny_gem, tmp_path)
    with pytest.raises(InputError, match=r"no layer 'counts'; layers present: logcounts"):
        read_gem(path, layer="counts")
    with pytest.raises(InputError, match=r"has no \.raw; drop use_raw"):
        read_gem(path, use_raw=True)
    with pytest.raises(InputError, match=r"either layer or use_raw"):
        read_gem(path, layer="logcounts", use_raw=True)
    with pytest.raises(InputError, match=r"transpose does not apply to \.h5ad"):
        read_gem(path, transpose=True)


@pytest.mark.parametrize("fmt", ["tsv", "gct", "npy", "parquet"])
def test_layer_and_use_raw_only_for_h5ad(fmt, tiny_gem, tmp_path):
    path, _ = _write(fmt, tiny_gem, tmp_path)
    with pytest.raises(InputError, match=r"layer and use_raw apply to \.h5ad files only"):
        read_gem(path, layer="counts")
    with pytest.raises(InputError, match=r"layer and use_raw apply to \.h5ad files only"):
        read_gem(path, use_raw=True)


def test_transpose_does_not_apply_to_gct(tiny_gem, tmp_path):
    path, _ = _write("gct", tiny_gem, tmp_path)
    with pytest.raises(InputError, match=r"transpose does not apply to \.gct"):
        read_gem(path, transpose=True)
