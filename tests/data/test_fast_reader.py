"""The fast (pyarrow) text reader gives exactly what the pandas reader gives, or hands over to it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tspg.data._gem as gem_module
from tspg.data import InputError, load_dataset, read_gem


def _pandas_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gem_module, "_read_numeric_rows", lambda *a, **k: None)


def _random_gem(n: int = 7, g: int = 9, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.gamma(0.7, 3.0, (n, g)) * rng.choice([1.0, 1e-4, 1e3], (n, g))
    return pd.DataFrame(values, index=[f"s{i}" for i in range(n)], columns=[f"G{j}" for j in range(g)])


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    fast = read_gem(path, **kw)
    with monkeypatch.context() as m:
        _pandas_only(m)
        slow = read_gem(path, **kw)
    return fast, slow


@pytest.mark.parametrize("name", ["gem.tsv", "gem.csv", "gem.txt", "gem.tsv.gz"])
def test_fast_reader_equals_pandas_on_full_precision_text(name, tmp_path, monkeypatch):
    gem = _random_gem()
    path = tmp_path / name
    text = gem.to_csv(sep="," if "csv" in name else "\t", index_label="sample", float_format="%.17g")
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    calls = []
    original = gem_module._read_numeric_rows
    monkeypatch.setattr(gem_module, "_read_numeric_rows", lambda *a, **k: calls.append(1) or original(*a, **k))
    fast = read_gem(path)
    assert calls, "the fast reader was not used"
    monkeypatch.setattr(gem_module, "_read_numeric_rows", original)
    _, slow = _both(path, monkeypatch)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.to_numpy().dtype == np.float32
    np.testing.assert_array_equal(fast.to_numpy(), gem.to_numpy(np.float32))


def test_fast_reader_missing_values_crlf_and_blank_lines(tmp_path, monkeypatch):
    path = tmp_path / "gem.tsv"
    path.write_bytes(b"sample\tA\tB\tC\r\ns1\t1.5\tNA\t\r\n\r\ns2\tnan\t-inf\t2e3\r\ns3\tNaN\t0\t-0.25")
    fast, slow = _both(path, monkeypatch)
    pd.testing.assert_frame_equal(fast, slow)
    assert np.isnan(fast.loc["s1", "B"]) and np.isnan(fast.loc["s1", "C"]) and fast.loc["s2", "B"] == -np.inf


def test_fast_reader_gct_equals_pandas(tmp_path, monkeypatch):
    gem = _random_gem(5, 6)
    lines = ["#1.2", f"{gem.shape[1]}\t{gem.shape[0]}", "NAME\tDescription\t" + "\t".join(gem.index)]
    for i, gene in enumerate(gem.columns):
        desc = "" if i == 0 else "some description"
        lines.append(f"{gene}\t{desc}\t" + "\t".join(repr(float(v)) for v in gem[gene]))
    path = tmp_path / "gem.gct"
    path.write_text("\n".join(lines) + "\n")
    fast, slow = _both(path, monkeypatch)
    pd.testing.assert_frame_equal(fast, slow)
    np.testing.assert_array_equal(fast.to_numpy(), gem.to_numpy(np.float32))


@pytest.mark.parametrize(
    ("content", "keyword"),
    [
        (b"sample\tA\tB\ns1\t1\tx\n", "non-numeric value 'x'"),
        (b"sample\tA\tB\ns1\t1\t2\t3\ns2\t1\t2\n", "more fields"),
    ],
)
def test_fast_reader_hands_bad_files_to_the_general_reader(content, keyword, tmp_path):
    path = tmp_path / "gem.tsv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=keyword):
        read_gem(path)


def test_quoted_fields_are_read_by_the_general_reader(tmp_path, monkeypatch):
    path = tmp_path / "gem.csv"
    path.write_text('sample,"A","B"\n"s1",1.5,"2"\ns2,3,4\n')
    fast, slow = _both(path, monkeypatch)
    pd.testing.assert_frame_equal(fast, slow)


def test_genes_are_selected_while_reading(tmp_path):
    gem = _random_gem()
    path = tmp_path / "gem.tsv"
    gem.to_csv(path, sep="\t", index_label="sample")
    got = read_gem(path, genes=["G5", "G1"])
    assert list(got.columns) == ["G5", "G1"]
    np.testing.assert_array_equal(got.to_numpy(), gem[["G5", "G1"]].to_numpy(np.float32))
    with pytest.raises(InputError, match="not in the GEM"):
        read_gem(path, genes=["G1", "nope"])


def test_gene_sets_select_genes_early_with_the_same_result(tmp_path, monkeypatch):
    gem = _random_gem(12, 10)
    path = tmp_path / "gem.tsv"
    gem.to_csv(path, sep="\t", index_label="sample")
    labels = tmp_path / "labels.tsv"
    labels.write_text("".join(f"{s}\t{'ab'[i % 2]}\n" for i, s in enumerate(gem.index)))
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("SET1\tdesc\tG7\tG2\tMISSING\nSET2\tdesc\tG9\n")
    requested = []
    original = gem_module.read_gem

    def spy(*a, **k):  # noqa: ANN002, ANN003, ANN202
        requested.append(k.get("genes"))
        return original(*a, **k)

    monkeypatch.setattr("tspg.data._dataset.read_gem", spy)
    ds = load_dataset(path, labels, gene_sets=gmt, gene_set_names=["SET1"])
    assert requested == [["G2", "G7"]]
    assert list(ds.gem.columns) == ["G2", "G7"]
    assert ds.gene_set_report["SET1"]["n_missing"] == 1
    np.testing.assert_array_equal(ds.gem.to_numpy(), gem.loc[ds.gem.index, ["G2", "G7"]].to_numpy(np.float32))
