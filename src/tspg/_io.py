"""Atomic writes of run outputs: every file appears whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

FLOAT_FORMAT = "%.7g"
_UMASK = os.umask(0)
os.umask(_UMASK)


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
    The final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, obj: object) -> Path:
    """Write JSON (indented, keys in insertion order) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_table(frame: pd.DataFrame, path: str | Path, index_label: str | None = None, index: bool = True) -> Path:
    """Write a tab-separated table atomically, floats with 7 significant digits."""
    return atomic_write(
        path, lambda p: frame.to_csv(p, sep="\t", float_format=FLOAT_FORMAT, index=index, index_label=index_label)
    )
