"""Readers for sample labels: two-column text, GSEA ``.cls``, or an AnnData ``.obs`` column."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tspg.data._errors import InputError


def _read_cls(path: Path, samples: Sequence[str] | None) -> pd.Series:
    with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte-order mark (Excel, Notepad) is not text
        lines = [ln.rstrip("\r\n") for ln in handle if ln.strip()]
    if len(lines) < 3:
        raise InputError(f"{path}: a .cls file needs 3 lines (counts, '# class names', labels); it has "
                         f"{len(lines)}.")
    head = lines[0].split()
    names = lines[1].lstrip("#").split()
    values = lines[2].split()
    if not lines[1].startswith("#"):
        raise InputError(f"{path}: line 2 of a .cls file must start with '#' and list the class names.")
    if head and head[0].isdigit() and int(head[0]) != len(values):
        raise InputError(f"{path}: line 1 says {head[0]} samples but line 3 has {len(values)} labels.")
    if names and all(v.isdigit() for v in values) and not set(values) & set(names):
        idx = [int(v) for v in values]
        if max(idx) >= len(names):
            raise InputError(f"{path}: label index {max(idx)} but only {len(names)} class names.")
        values = [names[i] for i in idx]
    if samples is None:
        raise InputError(f"{path}: a .cls file gives labels in GEM column order, so it needs the GEM.")
    if len(set(samples)) != len(samples):
        dup = pd.Index(samples)[pd.Index(samples).duplicated()].unique()[:5]
        raise InputError(f"{path}: the GEM's sample names repeat (e.g. {', '.join(map(str, dup))}), so its labels "
                         "cannot be told apart; give every GEM sample a unique name.")
    if len(samples) != len(values):
        raise InputError(f"{path}: {len(values)} labels for {len(samples)} GEM samples; a .cls file must have "
                         "one label per GEM sample, in the GEM's order.")
    return pd.Series(values, index=pd.Index(samples, dtype=str), name="label", dtype=str)


def _read_table(path: Path, samples: Sequence[str] | None) -> pd.Series:
    sep = "," if path.name.lower().endswith(".csv") else "\t"
    try:
        table = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False,
                            comment=None, skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot parse labels ({str(exc).splitlines()[0]}); expected two "
                         "tab-separated columns: sample id, label.") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the labels file is empty.") from None
    except UnicodeDecodeError:
        raise  # read_labels names it
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError) as exc:  # pandas decompresses by name
        reason = str(exc).splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read the labels ({reason}); is it a complete text file, and compressed "
                         "only if its name says so (.gz, .bz2, .zip, .xz)?") from None
    if table.shape[1] < 2:
        raise InputError(f"{path}: expected two {'comma' if sep == ',' else 'tab'}-separated columns (sample id, "
                         f"label); found {table.shape[1]}.")
    if table.shape[1] > 2:
        table = table.iloc[:, :2]
    table.columns = ["sample", "label"]
    table["sample"] = table["sample"].str.strip()
    table["label"] = table["label"].str.strip()
    first = table.iloc[0]
    known = set(samples) if samples is not None else None
    if known is not None:  # a first line with an unknown sample but one of the classes is a sample, not a header
        is_header = (first["sample"] not in known and table["sample"].iloc[1:].isin(known).any()
                     and first["label"] not in set(table["label"].iloc[1:]))
    else:
        is_header = first["sample"].lower() in {"sample", "samples", "id", "sample_id", "sampleid", "name", ""}
    if is_header:
        table = table.iloc[1:]
    if table.empty:
        raise InputError(f"{path}: no labels below the header line; expected one line per sample: sample id, "
                         "label.")
    empty = table["label"] == ""
    if empty.any():
        raise InputError(f"{path}: {int(empty.sum())} sample(s) have an empty label, e.g. "
                         f"'{table.loc[empty, 'sample'].iloc[0]}'; give every sample a label or remove it.")
    dup = table["sample"].duplicated()
    if dup.any():
        examples = ", ".join(table.loc[dup, "sample"].unique()[:5])
        raise InputError(f"{path}: {int(dup.sum())} sample id(s) appear more than once, e.g. {examples}; "
                         "each sample needs exactly one label.")
    return pd.Series(table["label"].to_numpy(), index=pd.Index(table["sample"], dtype=str), name="label")


def read_labels(path: str | Path, samples: Sequence[str] | None = None) -> pd.Series:
    """Read sample labels.

    Parameters
    ----------
    path
        A two-column text file (sample id, label; tab-separated, or comma-separated for ``.csv``; a header
        row is detected and skipped) or a GSEA ``.cls`` file (labels in the GEM's column order).
    samples
        The GEM's sample names, in order. Needed for ``.cls``; for text files it makes header detection exact.

    Returns
    -------
    Labels (str) indexed by sample id.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    try:
        if path.name.lower().endswith(".cls"):
            return _read_cls(path, samples)
        return _read_table(path, samples)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); labels must be "
                         "plain text.") from None


def labels_from_obs(obs: pd.DataFrame, key: str, source: str = "the .h5ad file") -> pd.Series:
    """Take labels from an AnnData ``.obs`` column.

    Parameters
    ----------
    obs
        The ``.obs`` table.
    key
        The column holding the labels.
    source
        Where ``obs`` came from, for error messages.

    Returns
    -------
    Labels (str) indexed by sample (cell) id.
    """
    if key not in obs.columns:
        valid = ", ".join(map(str, obs.columns)) or "none"
        raise InputError(f"{source}: no .obs column '{key}'; columns present: {valid}.")
    column = obs[key]
    missing = column.isna()
    if missing.any():
        raise InputError(f"{source}: .obs['{key}'] is missing for {int(missing.sum())} sample(s), e.g. "
                         f"'{obs.index[missing][0]}'; fill or drop them first.")
    return pd.Series(column.astype(str).to_numpy(), index=obs.index.astype(str), name="label")


def share_called_target(before: np.ndarray, after: np.ndarray, target: object) -> tuple[float, float, int]:
    """The success of a perturbation from a classifier's calls before and after it: TSPG's one definition.

    Parameters
    ----------
    before, after
        The class each sample is called before and after the perturbation (any comparable labels).
    target
        The target class.

    Returns
    -------
    The share called ``target`` after, among the samples not already called it before (NaN if none: their
    perturbation cannot show anything); the share among all samples (NaN if none); and the number not
    already called the target.

    Examples
    --------
    >>> import numpy as np
    >>> share_called_target(np.array([0, 1, 2, 2]), np.array([2, 2, 0, 2]), 2)
    (1.0, 0.75, 2)
    """
    before, after = np.asarray(before), np.asarray(after)
    hit = after == target
    fresh = before != target
    acc = float(hit[fresh].mean()) if fresh.any() else float("nan")
    acc_all = float(hit.mean()) if len(hit) else float("nan")
    return acc, acc_all, int(fresh.sum())
