"""Atomic table writing: the fast float-matrix path writes exactly what pandas writes."""

import numpy as np
import pandas as pd
import pytest

from tspg._io import FLOAT_FORMAT, _plain_float_matrix, write_table


def _pandas_bytes(frame: pd.DataFrame, path, **kw) -> bytes:
    frame.to_csv(path, sep="\t", float_format=FLOAT_FORMAT, **kw)
    return path.read_bytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_matrix_bytes_equal_pandas(tmp_path, dtype):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(7, 9)) * 10.0 ** rng.integers(-9, 9, size=9)).astype(dtype)
    x[0, :6] = [0.0, -0.0, np.inf, -np.inf, 1e-45, 123456789.0]
    frame = pd.DataFrame(x, index=[f"S {i}" for i in range(7)], columns=[f"G,{i}" for i in range(9)])
    frame.index.name = "sample"
    assert _plain_float_matrix(frame, True)
    for kw in ({}, {"index_label": "name"}):
        write_table(frame, tmp_path / "fast.tsv", **kw)
        assert (tmp_path / "fast.tsv").read_bytes() == _pandas_bytes(frame, tmp_path / "slow.tsv", **kw)


@pytest.mark.parametrize("change", ["nan", "tab_in_name", "quote_in_name", "int_column", "multiindex"])
def test_other_frames_go_to_pandas_and_still_match(tmp_path, change):
    frame = pd.DataFrame(np.arange(12, dtype=float).reshape(3, 4) / 7, index=["a", "b", "c"],
                         columns=["w", "x", "y", "z"])
    if change == "nan":
        frame.iloc[1, 2] = np.nan
    elif change == "tab_in_name":
        frame.index = ["a\tb", "b", "c"]
    elif change == "quote_in_name":
        frame.columns = ['w"', "x", "y", "z"]
    elif change == "int_column":
        frame["z"] = [1, 2, 3]
    else:
        frame.index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2), ("c", 3)])
    assert not _plain_float_matrix(frame, True)
    write_table(frame, tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_bytes() == _pandas_bytes(frame, tmp_path / "p.tsv")
