"""Fuzzing every reader: random bytes and structured mutations of valid files give a parse or an InputError.

Property-based (hypothesis). The ``ci`` profile (the default) tries a bounded, derandomised number of examples per
reader, so the suite stays at seconds; ``pytest tests/data/test_fuzz.py --fuzz`` runs the long ``fuzz`` profile.
The end of the run reports how many examples were tried ("fuzz: N examples tried").
"""

from __future__ import annotations

import gzip
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzzhelp import tried
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tspg.data import InputError, read_gem, read_gmt, read_labels

SAMPLES = ["s1", "s2", "007", "s4"]
GENES = ["TP53", "GATA1", "MYC"]
VALUES = np.array([[1.5, -2.25, 7.0], [2.0, 0.5, 10.0], [0.25, 4.0, 3.5], [5.0, 1.0, -1.0]], dtype=np.float32)


def _valid_texts() -> dict[str, bytes]:
    frame = pd.DataFrame(VALUES, index=SAMPLES, columns=GENES)
    tsv = frame.to_csv(sep="\t", index_label="sample").encode()
    csv = frame.to_csv(index_label="sample").encode()
    gct = ("#1.2\n3\t4\nNAME\tDescription\t" + "\t".join(SAMPLES) + "\n" + "".join(
        f"{g}\tna\t" + "\t".join(f"{v:g}" for v in VALUES[:, j]) + "\n" for j, g in enumerate(GENES))).encode()
    labels = "".join(f"{s}\t{c}\n" for s, c in zip(SAMPLES, "AABB", strict=True)).encode()
    cls = b"4 2 1\n# A B\nA A B B\n"
    gmt = b"SET_ONE\tna\tTP53\tMYC\nSET_TWO\thttp://x\tGATA1\n"
    return {"gem.tsv": tsv, "gem.csv": csv, "gem.gct": gct, "labels.tsv": labels, "labels.cls": cls,
            "sets.gmt": gmt}


VALID = _valid_texts()


def _mutate(data: bytes, ops: list[tuple[str, int]]) -> bytes:
    """Structured mutations: a cell deleted, a tab doubled, the header renamed, CRLF, BOM, NUL, truncation..."""
    for op, pos in ops:
        n = max(len(data), 1)
        i = pos % n
        if op == "delete_cell":
            j = data.find(b"\t", i)
            k = data.find(b"\t", j + 1) if j >= 0 else -1
            data = data[:j] + data[k:] if 0 <= j < k else data
        elif op == "double_tab":
            j = data.find(b"\t", i)
            data = data[:j] + b"\t" + data[j:] if j >= 0 else data
        elif op == "rename_header":
            end = data.find(b"\n")
            data = b"renamed\tcolumn" + data[end:] if end >= 0 else data
        elif op == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "nul":
            data = data[:i] + b"\x00" + data[i:]
        elif op == "truncate":
            data = data[:i]
        elif op == "duplicate_line":
            lines = data.split(b"\n")
            data = b"\n".join(lines[: i % len(lines) + 1] + lines[i % len(lines):])
        elif op == "delete_line":
            lines = data.split(b"\n")
            del lines[i % len(lines)]
            data = b"\n".join(lines)
        elif op == "flip_byte":
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:] if data else data
        elif op == "non_numeric":
            data = data.replace(b"2.0", b"two", 1)
    return data


OPS = st.lists(st.tuples(st.sampled_from(["delete_cell", "double_tab", "rename_header", "crlf", "bom", "nul",
                                          "truncate", "duplicate_line", "delete_line", "flip_byte",
                                          "non_numeric"]),
                         st.integers(0, 10_000)), min_size=1, max_size=3)


def _check_gem(frame: pd.DataFrame) -> None:
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape[0] > 0 and frame.shape[1] > 0
    assert frame.index.is_unique and frame.columns.is_unique
    assert all(dtype == np.float32 for dtype in frame.dtypes)


def _check_labels(labels: pd.Series) -> None:
    assert isinstance(labels, pd.Series) and len(labels) > 0
    assert labels.index.is_unique
    assert all(isinstance(v, str) and v for v in labels)


def _check_gmt(sets: dict) -> None:
    assert isinstance(sets, dict)
    assert all(isinstance(k, str) and isinstance(v, list) for k, v in sets.items())


def _read(name: str, data: bytes, folder: Path) -> None:
    """Write ``data`` as ``name`` into ``folder`` and read it with the matching reader: parse or InputError."""
    path = folder / name
    path.write_bytes(data)
    try:
        if name.startswith("gem"):
            _check_gem(read_gem(path))
        elif name.startswith("labels"):
            _check_labels(read_labels(path, samples=SAMPLES))
        else:
            _check_gmt(read_gmt(path))
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), message  # one line


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="tspg-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


NAMES = sorted(VALID)
FAST = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FAST
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=600))
def test_text_readers_on_random_bytes(scratch, name, data):
    tried("text readers, random bytes")
    _read(name, data, scratch)


@FAST
@given(name=st.sampled_from(NAMES), ops=OPS)
# found by the long profile: a GCT row with a field too many or too few escaped as pandas' ParserError
@example(name="gem.gct", ops=[("double_tab", 58)])
@example(name="gem.gct", ops=[("delete_cell", 53)])
def test_text_readers_on_mutated_valid_files(scratch, name, ops):
    tried("text readers, mutated files")
    _read(name, _mutate(VALID[name], ops), scratch)


def test_the_valid_files_parse_exactly(scratch):
    for name in ("gem.tsv", "gem.csv", "gem.gct"):
        (scratch / name).write_bytes(VALID[name])
        frame = read_gem(scratch / name)
        assert list(frame.index) == SAMPLES and list(frame.columns) == GENES
        np.testing.assert_array_equal(frame.to_numpy(), VALUES)
    (scratch / "labels.cls").write_bytes(VALID["labels.cls"])
    assert list(read_labels(scratch / "labels.cls", samples=SAMPLES)) == ["A", "A", "B", "B"]


@FAST
@given(ops=OPS, cut=st.integers(0, 400))
def test_gzipped_tsv_truncated_or_mutated(scratch, ops, cut):
    tried("gzipped tsv")
    packed = gzip.compress(_mutate(VALID["gem.tsv"], ops), mtime=0)
    _read("gem.tsv.gz", packed[: max(cut, 1)] if cut < len(packed) else packed, scratch)


@FAST
@given(data=st.binary(max_size=300), ops=OPS, which=st.sampled_from(["array", "rownames", "colnames"]))
def test_npy_with_damaged_array_or_names(scratch, data, ops, which):
    tried("npy")
    buf = io.BytesIO()
    np.save(buf, VALUES)
    files = {"array": buf.getvalue(), "rownames": "\n".join(SAMPLES).encode() + b"\n",
             "colnames": "\n".join(GENES).encode() + b"\n"}
    files[which] = data if which == "array" and data else _mutate(files[which], ops)
    (scratch / "gem.rownames.txt").write_bytes(files["rownames"])
    (scratch / "gem.colnames.txt").write_bytes(files["colnames"])
    _read("gem.npy", files["array"], scratch)


def _valid_binary(kind: str, folder: Path) -> bytes:
    frame = pd.DataFrame(VALUES, index=pd.Index(SAMPLES, name="sample"), columns=GENES)
    path = folder / f"valid.{kind}"
    if not path.exists():
        if kind == "parquet":
            frame.reset_index().to_parquet(path)
        else:
            import anndata as ad

            ad.AnnData(X=VALUES, obs=pd.DataFrame(index=SAMPLES), var=pd.DataFrame(index=GENES)).write_h5ad(path)
    return path.read_bytes()


@FAST
@given(ops=st.lists(st.tuples(st.sampled_from(["truncate", "flip_byte", "nul"]), st.integers(0, 100_000)),
                    min_size=1, max_size=3))
@example(ops=[("flip_byte", 3164)])  # found by the long profile: pyarrow's ArrowException escaped
def test_parquet_damaged(scratch, ops):
    tried("parquet")
    _read("gem.parquet", _mutate(_valid_binary("parquet", scratch), ops), scratch)


# h5py/anndata reading is slow and shrinking a failure took over ten minutes: no shrink phase here
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(ops=st.lists(st.tuples(st.sampled_from(["truncate", "flip_byte", "nul"]), st.integers(0, 100_000)),
                    min_size=1, max_size=3))
@example(ops=[("nul", 20160)])  # found in CI's profile: h5py's RuntimeError escaped
def test_h5ad_damaged(scratch, ops):
    tried("h5ad")
    _read("gem.h5ad", _mutate(_valid_binary("h5ad", scratch), ops), scratch)


# regressions found by fuzzing (each failed before its fix)
def test_labels_file_of_a_lone_tab_is_refused(files):
    path = files.text("labels.tsv", "\t\n")
    with pytest.raises(InputError, match="no labels below the header"):
        read_labels(path)  # without the GEM's names the empty first field reads as a header
    with pytest.raises(InputError, match="empty label"):
        read_labels(path, samples=SAMPLES)


def test_cls_with_repeated_gem_sample_names_is_refused(files):
    path = files.text("labels.cls", "4 2 1\n# A B\nA A B B\n")
    with pytest.raises(InputError, match="sample names repeat"):
        read_labels(path, samples=["s1", "s1", "s2", "s3"])
