"""Expression transforms applied before scaling (linear counts to log units), and the rule that spots counts."""

from __future__ import annotations

import numpy as np

from tspg._options import TRANSFORMS
from tspg.data._errors import InputError

#: Units of a run's expression-unit outputs, per transform.
TRANSFORM_UNITS = {"none": "the input's units", "log2p1": "log2(x + 1) of the input",
                   "log1p": "ln(x + 1) of the input"}

#: :func:`looks_like_counts`: the largest value at least this ...
COUNTS_MIN_MAXIMUM = 100.0
#: ... and the 99th percentile of the positive values at least this many times their median.
COUNTS_MIN_SKEW = 8.0
#: Values looked at by :func:`looks_like_counts` (an even stride through the matrix beyond this).
COUNTS_SAMPLE = 1_000_000


def check_transform(kind: str) -> None:
    """Raise :class:`InputError` unless ``kind`` is one of :data:`TRANSFORMS`."""
    if kind not in TRANSFORMS:
        raise InputError(f"Unknown transform {kind!r}; choose one of {', '.join(TRANSFORMS)}.")


def apply_transform(values: np.ndarray, kind: str, source: str = "the data") -> np.ndarray:
    """``values`` in the units a run works in: as they are, ``log2(x + 1)`` or ``ln(x + 1)`` (float32).

    Missing values (NaN) stay missing. A log transform of a negative value has no meaning, so any negative value
    raises :class:`InputError` naming how many there are.

    Parameters
    ----------
    values
        Samples x genes.
    kind
        One of :data:`TRANSFORMS`.
    source
        What the values are, for the message.

    Examples
    --------
    >>> apply_transform(np.array([[0.0, 1.0, 3.0]]), "log2p1").tolist()
    [[0.0, 1.0, 2.0]]
    """
    check_transform(kind)
    if kind == "none":
        return values
    values = np.asarray(values, dtype=np.float32)
    negative = int(np.count_nonzero(values < 0))
    if negative:
        raise InputError(f"{source} has {negative} negative value(s), which --transform {kind} cannot take (it is "
                         "for non-negative counts); leave the transform out for data already in log units.")
    return (np.log2(values + 1.0) if kind == "log2p1" else np.log1p(values)).astype(np.float32)


def looks_like_counts(values: np.ndarray) -> tuple[bool, str]:
    """Whether ``values`` look like linear counts or intensities rather than log units, and why.

    The rule: no negative value, a maximum of at least :data:`COUNTS_MIN_MAXIMUM`, and a heavy right tail, the
    99th percentile of the positive values at least :data:`COUNTS_MIN_SKEW` times their median (on log2 data
    the ratio is about 1.5-2, on RNA-seq counts or microarray intensities tens to thousands). Up to
    :data:`COUNTS_SAMPLE` values are looked at (an even stride through the matrix), so it is quick at any size.

    Returns
    -------
    The verdict and a short description of the data (maximum, and the tail ratio when computed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> logs = rng.normal(6, 2, (50, 40)).clip(0)
    >>> looks_like_counts(logs)[0], looks_like_counts(2 ** logs - 1)[0]
    (False, True)
    """
    flat = np.asarray(values).reshape(-1)
    if flat.size > COUNTS_SAMPLE:
        flat = flat[:: flat.size // COUNTS_SAMPLE + 1]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return False, "no finite values"
    top = float(flat.max())
    if float(flat.min()) < 0 or top < COUNTS_MIN_MAXIMUM:
        return False, f"maximum {top:.3g}"
    positive = flat[flat > 0]
    ratio = float(np.quantile(positive, 0.99) / np.median(positive))
    return ratio >= COUNTS_MIN_SKEW, f"non-negative, maximum {top:.3g}, 99th percentile {ratio:.0f}x the median"
