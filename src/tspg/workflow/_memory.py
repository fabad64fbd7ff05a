"""Handing memory back to the operating system between the phases of a run."""

from __future__ import annotations

from tspg._memory import trim_heap


def release_memory() -> None:
    """Return freed memory to the operating system after a training phase.

    glibc keeps freed heap memory (optimiser state, discriminator, activations) in the process, so the resident
    size after a phase stays at its peak; ``malloc_trim`` hands it back (W2 ``tspg run``: see ``docs/method.md``).
    A no-op where the C library has no ``malloc_trim``.
    """
    import gc

    gc.collect()
    trim_heap()
