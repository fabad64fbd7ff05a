"""Atomic table writing: the fast float-matrix path writes exactly what pandas writes."""

import os
import subprocess
import sys

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


@pytest.mark.parametrize("change", ["nan", "tab_in_name", "quote_in_name", "int_column", "multiindex", "float_labels",
                                    "datetime_index", "none_label", "tab_in_index_label", "nullable_float"])
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
    elif change == "multiindex":
        frame.index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2), ("c", 3)])
    elif change == "float_labels":
        frame.columns = [1 / 3, 0.5, 2.0, 3.0]
    elif change == "datetime_index":
        frame.index = pd.date_range("2020-01-01", periods=3)
    elif change == "none_label":
        frame.index = ["a", None, "c"]
    elif change == "nullable_float":
        frame = frame.astype("Float64")
    kw = {"index_label": "x\ty"} if change == "tab_in_index_label" else {}
    assert not _plain_float_matrix(frame, True, kw.get("index_label"))
    write_table(frame, tmp_path / "t.tsv", **kw)
    assert (tmp_path / "t.tsv").read_bytes() == _pandas_bytes(frame, tmp_path / "p.tsv", **kw)


def test_non_ascii_names_are_utf8_whatever_the_locale(tmp_path):
    script = tmp_path / "w.py"
    script.write_text(
        "import numpy as np, pandas as pd, sys\n"
        "from tspg._io import atomic_write_text, write_table\n"
        "write_table(pd.DataFrame(np.ones((1, 1)), index=['s\\u00e4mple'], columns=['G\\u00e8ne']), sys.argv[1])\n"
        "atomic_write_text(sys.argv[2], '\\u2013')\n", encoding="ascii")
    env = {**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"}
    subprocess.run([sys.executable, str(script), tmp_path / "t.tsv", tmp_path / "t.md"], env=env, check=True)
    assert (tmp_path / "t.tsv").read_bytes() == "\tG\u00e8ne\ns\u00e4mple\t1\n".encode()
    assert (tmp_path / "t.md").read_bytes() == "\u2013".encode()
