"""The C heap: handing free pages back to the system (glibc's ``malloc_trim``) and its thresholds (``mallopt``)."""

from __future__ import annotations

import functools


@functools.cache
def _glibc():  # noqa: ANN202
    """The C library when it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018  (AttributeError where they are missing)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return libc


def trim_heap() -> None:
    """Give the C heap's free pages back to the system; a no-op where the C library has no ``malloc_trim``."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


#: glibc's ``mallopt`` parameter numbers (``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: The heap settings of the ``tspg`` command (:func:`tune_heap`), by the environment variable that overrides each.
HEAP_SETTINGS: dict[str, int] = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 64 << 20}


def _user_set_heap() -> bool:
    import os

    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(name in os.environ for name in HEAP_SETTINGS) or any(
        key in tunables for key in ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold"))


def tune_heap() -> dict[str, int]:
    """Keep freed blocks of up to 32 MiB in glibc's heap for reuse instead of returning them to the system.

    glibc serves blocks above a threshold (adjusted at run time, at most 32 MiB) with fresh ``mmap`` pages and
    returns free space above another one to the system. A training step allocates and frees tens of MB of
    gradients and activations; under the default rules many of them were handed back and touched afresh at every
    step (W2 generator step in fp32: about 7,000 page faults and 13-18 ms of kernel time a step). Fixed thresholds,
    ``mmap`` above 32 MiB and trimming above 64 MiB of free space, keep them. Phases still hand memory back at
    their end (:func:`trim_heap`).

    Nothing is changed where the user set either threshold (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``
    or their ``GLIBC_TUNABLES``), or where the C library is not glibc.

    Returns
    -------
    The settings applied, by environment variable name; empty when none was.
    """
    libc = _glibc()
    if libc is None or _user_set_heap():
        return {}
    applied = {}
    for name, param in (("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD), ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD)):
        if libc.mallopt(param, HEAP_SETTINGS[name]) == 1:
            applied[name] = HEAP_SETTINGS[name]
    return applied
