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
    bfloat16; no loss scaling is needed (bf16 has fp32's exponent range).
    """
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dev = torch.device(device)
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def warn_if_slow_precision(device: str | torch.device, precision: str) -> None:
    """Log a warning when ``bf16`` is asked for on a CPU that has to emulate it."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not cpu_has_native_bf16():
        log.warning("precision bf16: this CPU has no AVX512-BF16/AMX, so bf16 matrix products are emulated and "
                    "slower than fp32; use precision fp32 here")
