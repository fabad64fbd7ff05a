"""Handing memory back to the operating system between the phases of a run."""

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


def release_memory() -> None:
    """Return freed memory to the operating system after a training phase.

    glibc keeps freed heap memory (optimiser state, discriminator, activations) in the process, so the resident
    size after a phase stays at its peak; ``malloc_trim`` hands it back (W2 ``tspg run``: see ``docs/method.md``).
    A no-op where the C library has no ``malloc_trim``.
    """
    import gc

    gc.collect()
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)
