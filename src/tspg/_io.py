"""Atomic writes of run outputs: every file appears whole or not at all."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.7g"
_SPECIAL = ("\t", "\n", "\r", '"')


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write ``path`` by calling ``writer(tmp_path)`` on a temporary file beside it, then renaming.

    Parameters
    ----------
    path
        The final file.
    writer
        Writes the content to the path it is given.

    Returns
    -------
    The final path. If the writer fails (an ``OSError`` such as a full disk is re-raised naming ``path``), the
    temporary file is removed and an earlier ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path)
    try:
        writer(tmp_path)
        os.replace(tmp_path, path)
    except OSError as exc:  # a full disk, a lost mount: nothing partial is left, and the error names the file
        tmp_path.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise type(exc)(exc.errno, f"could not write {path}: {reason}; nothing was written") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _new_temp_file(path: Path) -> Path:
    """Create an empty, new hidden file beside ``path`` with the usual permissions (0666 less the umask).

    ``O_CREAT | O_EXCL`` makes it this process's own file (no race with another writer), and the mode lets the
    process umask apply as for any file the user creates; the umask itself is never read or changed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: object) -> Path:
    """Write JSON (indented, keys in insertion order) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_table(frame: pd.DataFrame, path: str | Path, index_label: str | None = None, index: bool = True) -> Path:
    """Write a tab-separated table atomically, floats with 7 significant digits.

    Matrices of floats (perturbations, perturbed samples) take a fast path that writes the same bytes as
    ``DataFrame.to_csv`` about six times faster (400 x 4,386: 0.4 s against 2.5 s); any other frame goes to pandas.
    """
    if _plain_float_matrix(frame, index, index_label):
        return atomic_write(path, lambda p: _write_float_matrix(frame, p, index_label))
    return atomic_write(
        path, lambda p: frame.to_csv(p, sep="\t", float_format=FLOAT_FORMAT, index=index, index_label=index_label)
    )


def _plain_float_matrix(frame: pd.DataFrame, index: bool, index_label: object = None) -> bool:
    """Whether ``frame`` is all NumPy floats, NaN-free, with string names that pandas would write unquoted."""
    if not index or frame.shape[1] == 0 or isinstance(frame.index, pd.MultiIndex) \
            or isinstance(frame.columns, pd.MultiIndex):
        return False
    if not all(isinstance(t, np.dtype) and t.kind == "f" for t in frame.dtypes):
        return False
    label = index_label if index_label is not None else frame.index.name
    if label is not None and not isinstance(label, str):
        return False
    names = [*frame.index, *frame.columns, label or ""]
    if not all(isinstance(name, str) for name in names):
        return False
    if any(c in name for name in names for c in _SPECIAL):
        return False
    return not np.isnan(frame.to_numpy()).any()


def _write_float_matrix(frame: pd.DataFrame, path: Path, index_label: str | None) -> None:
    first = index_label if index_label is not None else (frame.index.name or "")
    row_format = "%s\t" + "\t".join([FLOAT_FORMAT] * frame.shape[1]) + "\n"
    values = frame.to_numpy()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join([str(first), *map(str, frame.columns)]) + "\n")
        for name, row in zip(frame.index, values, strict=True):
            fh.write(row_format % (name, *row.tolist()))
