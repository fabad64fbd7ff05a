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

#: The environment variable from which the ``tspg`` command sets :attr:`Settings.onednn_fp32` (``1`` or ``0``).
ONEDNN_FP32_ENVIRONMENT = "TSPG_ONEDNN_FP32"


class Settings:
    """tspg's process-wide settings; the one instance is ``tspg.settings``.

    Attributes
    ----------
    seed
        The seed a :class:`tspg.TSPG` uses when none is given (default 0). Every random draw of tspg comes from
        generators seeded from it; the global random state of torch, NumPy and ``random`` is never touched.
    onednn_fp32
        Whether fp32 matrix products of training may run in oneDNN's kernels where those stay exact fp32
        (default True; ``docs/method.md``, "fp32 products through oneDNN"). False keeps every product in
        torch's default backend (MKL on the CPU): the numbers then differ from the default's in the last bits,
        as on another machine. The ``tspg`` command sets it from ``TSPG_ONEDNN_FP32`` (``0`` or ``1``).

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
        self._onednn_fp32 = True

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
    def onednn_fp32(self) -> bool:
        """Whether training's fp32 matrix products may run in oneDNN where it stays exact (default True)."""
        return self._onednn_fp32

    @onednn_fp32.setter
    def onednn_fp32(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"tspg.settings.onednn_fp32 must be True or False, not {value!r}")
        self._onednn_fp32 = value

    def apply_onednn_environment(self) -> bool:
        """Set :attr:`onednn_fp32` from :data:`ONEDNN_FP32_ENVIRONMENT` where it is set; the ``tspg`` command calls it.

        Returns
        -------
        The setting as it is now.

        Raises
        ------
        ValueError
            When the variable is set to anything but ``1`` or ``0``.
        """
        value = os.environ.get(ONEDNN_FP32_ENVIRONMENT)
        if value is not None:
            if value.strip() not in ("0", "1"):
                raise ValueError(f"{ONEDNN_FP32_ENVIRONMENT} must be 1 or 0, not {value!r}: set it to 0 to keep fp32 "
                                 "matrix products in torch's default backend, or unset it")
            self.onednn_fp32 = value.strip() == "1"
        return self.onednn_fp32

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
        return f"tspg.settings(seed={self._seed}, onednn_fp32={self._onednn_fp32})"


settings = Settings()
