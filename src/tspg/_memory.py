"""Handing the C heap's free pages back to the operating system (glibc's ``malloc_trim``)."""

from __future__ import annotations

import functools


@functools.cache
def _libc_malloc_trim():  # noqa: ANN202
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None


def trim_heap() -> None:
    """Give the C heap's free pages back to the system; a no-op where the C library has no ``malloc_trim``."""
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)
