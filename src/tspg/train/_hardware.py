"""Where and in which precision training runs: device resolution and mixed-precision (bf16) autocast."""

from __future__ import annotations

import contextlib
import functools
import logging

import torch

from tspg._options import PRECISIONS
from tspg.data import InputError

log = logging.getLogger(__name__)

DEVICES_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``: ``auto`` is the first CUDA device when one is present, else the CPU.

    Parameters
    ----------
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (or a :class:`torch.device`).

    Returns
    -------
    The device; :class:`~tspg.data.InputError` (a ``ValueError``) names the valid choices when it is not one of
    them or not available.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"`device` {device!r} is not a torch device; use {DEVICES_HELP}.") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"`device` {device}: only cpu and cuda are supported; use {DEVICES_HELP}.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"`device` {device}: this torch has no CUDA device available; use `device=cpu` or "
                         "`device=auto`.")
    return dev


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is a known precision, else raise a ValueError listing the valid names."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The arithmetic that ``precision`` means on ``device``: ``fp32`` or ``bf16``.

    ``auto`` is ``bf16`` where matrix products in bfloat16 are native: a CPU with AVX512-BF16 or AMX
    (:func:`cpu_has_native_bf16`) or a CUDA device that supports bfloat16; ``fp32`` elsewhere, where bf16 would be
    emulated and slower. The quality benchmark measured that a generator trained in bf16 is as realistic as in
    fp32; the classifier's default stays ``fp32`` (``docs/method.md``, "Precision").
    """
    check_precision(precision)
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if dev.type == "cpu" and cpu_has_native_bf16() else "fp32"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX; read from /proc/cpuinfo).

    Without them torch emulates bf16 matrix products, which is several times slower than fp32.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A context in which forward passes run in ``precision`` on ``device`` (a no-op for ``fp32``).

    ``bf16`` is torch's automatic mixed precision: weights and optimiser state stay fp32, matrix products run in
    bfloat16; no loss scaling is needed (bf16 has fp32's exponent range). ``auto``: see :func:`resolve_precision`.
    """
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    dev = torch.device(device)
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def warn_if_slow_precision(device: str | torch.device, precision: str) -> None:
    """Log a warning when ``bf16`` is asked for on a CPU that has to emulate it."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not cpu_has_native_bf16():
        log.warning("precision bf16: this CPU has no AVX512-BF16/AMX, so bf16 matrix products are emulated and "
                    "slower than fp32; use precision fp32 here")
