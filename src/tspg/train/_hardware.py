"""Where and in which precision training runs: device resolution and mixed-precision (bf16) autocast."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

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


#: Products the probe of :func:`onednn_fp32_is_exact` checks, as ``(rows, inner, columns, transposed)``: a batch
#: through a layer (``linear``: a transposed weight) and a weight gradient (``mm`` of a transposed batch), kept
#: small (eight products of up to 2,048 columns raised the peak memory by 25 MB; these two, by about 5 MB).
_PROBE_SHAPES = ((128, 512, 256, False), (256, 128, 512, True))


def _mkldnn_matmul_flags() -> object | None:
    """``torch.backends.mkldnn.matmul`` where this torch has its ``fp32_precision`` setting (2.13 has), else None."""
    flags = getattr(torch.backends.mkldnn, "matmul", None)
    if flags is None or not hasattr(flags, "fp32_precision") or not torch.backends.mkldnn.is_available():
        return None
    return flags


@functools.cache
def onednn_fp32_is_exact() -> bool:
    """Whether fp32 matrix products that torch may hand to oneDNN still compute in fp32 on this CPU (checked once).

    With ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` torch sends fp32 products to oneDNN instead of
    MKL and allows oneDNN to round their operands to bf16. Where oneDNN has no such kernel (measured on an AMD
    EPYC, Zen 4, with AVX512-BF16) it runs them in fp32, in kernels 1.2-3x faster than MKL's on this package's
    shapes; where it does round (CPUs with AMX), fp32 must stay fp32, so :func:`fp32_products` leaves the
    setting alone. The probe: products of ``1 + 2**-12`` (not a bf16 number) by ones must come out exact, at each
    of :data:`_PROBE_SHAPES`. A few milliseconds and about 5 MB (oneDNN's kernels for them), once per process.
    """
    flags = _mkldnn_matmul_flags()
    if flags is None:
        return False
    try:
        with _routed(flags):
            for rows, inner, cols, transposed in _PROBE_SHAPES:
                want = inner * (1 + 2**-12)  # exact in fp32 (inner is a power of two), 'inner' once rounded to bf16
                if transposed:
                    out = torch.full((inner, rows), 1 + 2**-12).T @ torch.ones(inner, cols)
                else:
                    out = torch.nn.functional.linear(torch.full((rows, inner), 1 + 2**-12), torch.ones(cols, inner))
                if not bool((out == want).all()):
                    return False
        return True
    except (RuntimeError, ValueError):  # a torch that refuses the setting (mixed with the legacy API, say)
        return False


@contextlib.contextmanager
def _routed(flags: object) -> Iterator[None]:
    """Torch's fp32 products sent to oneDNN (``fp32_precision = "bf16"``) inside; the previous value put back."""
    before = flags.fp32_precision
    flags.fp32_precision = "bf16"
    try:
        yield
    finally:
        flags.fp32_precision = before


@contextlib.contextmanager
def fp32_products() -> Iterator[None]:
    """Within this context, fp32 matrix products on the CPU run in oneDNN's kernels where those are exact fp32.

    torch sends fp32 products to MKL, which on AMD CPUs ran this package's shapes at 48-178 GFLOP/s against
    oneDNN's 95-211 (AMD EPYC, Zen 4, 2 cores; a W2 generator step in fp32 91 -> 77 ms, the classifier's
    weight-gradient product 6.0 -> 2.0 ms). Only where :func:`onednn_fp32_is_exact` holds; elsewhere nothing
    changes, and products on a GPU never do; ``tspg.settings.onednn_fp32 = False`` (the ``tspg`` command:
    ``TSPG_ONEDNN_FP32=0``) turns it off. The previous setting is put back on leaving, so the process's other
    torch work is untouched. Results differ from MKL's in the last bits (another order of sums), as on another
    machine.

    oneDNN builds and keeps a kernel for every product shape it meets (about 0.3-2.5 MB each), so this is used
    where the shapes are few and fixed: :func:`tspg.train.fit_classifier` (its batches and validation part),
    a per-target generator's training step, and the full batches of :func:`tspg.train.generate` (one shape).
    Validation, inference's last partial batch and the conditional generator's step (whose per-target row counts
    change every step) stay with MKL: with validation, all of inference and the conditional step inside,
    `tspg run`'s peak memory rose by 75 MB on W1 and 60 MB on W2.
    """
    from tspg._settings import settings

    flags = _mkldnn_matmul_flags()
    if flags is None or not settings.onednn_fp32 or not onednn_fp32_is_exact():
        yield
        return
    with _routed(flags):
        yield
