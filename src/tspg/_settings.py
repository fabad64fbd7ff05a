"""Process-wide settings, changed only when the user asks (``tspg.settings``, in the style of ``scvi.settings``).

Importing tspg changes nothing in the process: no environment variable, no thread count, no random state, no
matplotlib backend. The ``tspg`` command applies :data:`THREAD_ENVIRONMENT` itself before torch is loaded; a
Python user who wants the same guarantees calls :meth:`Settings.apply_thread_environment` before importing torch
(see ``docs/method.md``, "Same seed, same files").
"""

from __future__ import annotations

import os
import sys

#: OpenMP/MKL settings of the ``tspg`` command (kept where the user set them already).
#:
#: - ``MKL_DYNAMIC`` / ``OMP_DYNAMIC`` ``FALSE``: MKL and OpenMP may otherwise lower their thread count when the
#:   machine is busy, which changes the order of floating-point sums from run to run: same seed, same data, same
#:   machine would no longer give the same files.
#: - ``OMP_WAIT_POLICY`` ``PASSIVE``: idle OpenMP threads sleep instead of spinning. With a fixed thread count,
#:   spinning threads on a machine shared with other work wait for each other at every parallel region: with one
#:   busy process beside it, a W2 generator step took 420-556 ms spinning against 222-250 ms passive (2 cores;
#:   idle: 124-155 against 141-150 ms, no cost). See ``docs/method.md``.
THREAD_ENVIRONMENT: dict[str, str] = {"MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE", "OMP_WAIT_POLICY": "PASSIVE"}


class Settings:
    """tspg's process-wide settings; the one instance is ``tspg.settings``.

    Attributes
    ----------
    seed
        The seed a :class:`tspg.TSPG` uses when none is given (default 0). Every random draw of tspg comes from
        generators seeded from it; the global random state of torch, NumPy and ``random`` is never touched.

    Examples
    --------
    >>> import tspg
    >>> tspg.settings.seed = 3
    >>> tspg.settings.seed
    3
    >>> tspg.settings.seed = 0
    """

    def __init__(self) -> None:
        self._seed = 0

    @property
    def seed(self) -> int:
        """The default seed of new :class:`tspg.TSPG` objects."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise ValueError(f"tspg.settings.seed must be an integer in [0, 2**31), not {value!r}")
        self._seed = value

    @property
    def num_threads(self) -> int:
        """Threads of torch's CPU operations (``torch.get_num_threads``); setting it calls ``torch.set_num_threads``.

        Reading or setting it imports torch. The same count gives the same results; a different count may change
        the last bits of sums, so keep it fixed for byte-identical reruns.
        """
        import torch

        return torch.get_num_threads()

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"tspg.settings.num_threads must be an integer >= 1, not {value!r}")
        import torch

        torch.set_num_threads(value)

    @staticmethod
    def apply_thread_environment() -> dict[str, str]:
        """Set :data:`THREAD_ENVIRONMENT` in ``os.environ`` where the user has not set those variables.

        OpenMP and MKL read them when they start, so this only has an effect before torch (or NumPy's MKL) is
        imported; a ``RuntimeWarning`` says so when torch is loaded already. The ``tspg`` command calls it first.

        Returns
        -------
        The variables as they are now.
        """
        if "torch" in sys.modules:
            import warnings

            warnings.warn("tspg.settings.apply_thread_environment: torch is imported already, so its OpenMP runtime "
                          "will not see these variables; call it before importing torch", RuntimeWarning,
                          stacklevel=2)
        for name, value in THREAD_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        return {name: os.environ[name] for name in THREAD_ENVIRONMENT}

    @staticmethod
    def apply_heap_settings() -> dict[str, int]:
        """Keep freed memory blocks of up to 32 MiB in the C heap for reuse (glibc only); the ``tspg`` command calls it.

        Training allocates and frees its gradients and activations at every step; under glibc's default rules
        many were handed back to the system and touched afresh each time: on a W2 generator step in fp32, about
        7,000 page faults and 10% of the step's time (see ``docs/method.md``, "Speed"). Unlike the thread
        environment this can be called at any time. It changes the whole process's ``malloc``, so a library does
        not do it on import: call it once in a script that trains. Settings the user made through
        ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES`` are left alone.

        Returns
        -------
        The thresholds applied (bytes), by the environment variable that would set each; empty where none was
        (another C library, or the user's own settings).
        """
        from tspg._memory import tune_heap

        return tune_heap()

    def __repr__(self) -> str:
        return f"tspg.settings(seed={self._seed})"


settings = Settings()
