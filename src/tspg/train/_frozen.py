"""The frozen classifier's logits in G's loss, with the backward pass only for the rows whose gradient is not zero.

``L_adv`` is a hinge: ``max(max_{i!=t} z_i - z_t, -kappa)``. A row whose margin is already ``kappa`` or more sends
an exact zero gradient back through f, and autograd still multiplies that zero through every layer of f. Once f
calls most perturbed samples the target with room to spare (from the first step on with the transport prior:
about 5% of the rows of a W2 batch have an active hinge, ``docs/method.md``, "f's backward pass, row by row"),
that is nearly all of f's backward pass: a 128 x 1,024 x genes product and the smaller ones, 12% of a step's
arithmetic. :class:`FrozenClassifier` computes the same logits and the same gradient, but only for the rows that
have one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from tspg.nn import Classifier
from tspg.train._hardware import autocast

#: The row counts f's backward pass runs at (else the whole batch). A fixed few shapes, not one per count of active
#: rows: oneDNN builds and caches a kernel for every new product shape, and with a shape per count a W1
#: ``tspg run`` peaked 21 MB higher than with autograd's backward pass, 3.5 MB with these (``docs/method.md``).
ROW_BUCKETS: tuple[int, ...] = (16, 32)


class _RowSparseLogits(torch.autograd.Function):
    """f's logits (a stack of Linear and ReLU on ``x - center``); the gradient of ``x`` only for rows that get one.

    The forward pass is the one autocast runs: ``x - center`` in float32, then every product in ``dtype``. The
    backward pass is autograd's (``mm`` of the output gradient with each weight, ``threshold_backward`` at each
    ReLU), restricted to the rows whose output gradient has a non-zero entry, padded with rows whose gradient is
    zero to one of :data:`ROW_BUCKETS` rows (else the whole batch); the other rows' input gradient is zero, as it
    is exactly under autograd.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, center: torch.Tensor, dtype: torch.dtype,
                *params: torch.Tensor) -> torch.Tensor:
        # cast here, as autocast casts them, and held only until the backward pass (not for the whole fit: at
        # 4,386 genes that was 10 MB more at W2's peak and no steady gain, docs/method.md)
        weights = [w.to(dtype) for w in params[0::2]]
        biases = [b.to(dtype) for b in params[1::2]]
        h = (x - center).to(dtype)
        acts = []
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(weights) - 1:
                h = torch.relu(h)
                acts.append(h)
        ctx.save_for_backward(*weights, *acts)
        ctx.n_layers, ctx.x_dtype, ctx.x_shape = len(weights), x.dtype, x.shape
        return h

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        weights, acts = saved[:ctx.n_layers], saved[ctx.n_layers:]
        n_inputs = 3 + 2 * ctx.n_layers
        active = grad.ne(0).any(1)
        n_active = int(active.sum())
        if n_active == 0:
            return (None,) * n_inputs
        size = next((s for s in ROW_BUCKETS if s >= n_active), len(grad))
        every = size >= len(grad)  # then no row is gathered or scattered
        if not every:  # the active rows, then inactive ones (their gradient is an exact 0) up to the bucket's size
            rows = torch.argsort(active.logical_not().to(torch.uint8), stable=True)[:size]
        g = grad if every else grad[rows]
        for i in range(ctx.n_layers - 1, -1, -1):
            g = g.mm(weights[i])
            if i > 0:
                g = torch.ops.aten.threshold_backward(g, acts[i - 1] if every else acts[i - 1][rows], 0)
        if every:
            out = g.to(ctx.x_dtype)
        else:
            out = g.new_zeros(ctx.x_shape, dtype=ctx.x_dtype)
            out[rows] = g.to(ctx.x_dtype)
        return (out,) + (None,) * (n_inputs - 1)


def _dense_relu_params(classifier: Classifier) -> list[torch.Tensor] | None:
    """The weights and biases of f in order when it is Linear/ReLU alternating, ending on a Linear; else None."""
    mods = list(classifier.net)
    if not mods or len(mods) % 2 == 0:
        return None
    params: list[torch.Tensor] = []
    for i, m in enumerate(mods):
        if i % 2 == 0:
            if not isinstance(m, nn.Linear) or m.bias is None:
                return None
            params += [m.weight, m.bias]
        elif not isinstance(m, nn.ReLU):
            return None
    return params


class FrozenClassifier:
    """The logits f gives the perturbed samples in G's loss, with f's backward pass only where it is not zero.

    The numbers are autocast's: ``x - center`` in float32, then every product in the precision's dtype, the weights
    cast at each call as autocast casts them.

    Parameters
    ----------
    classifier
        The frozen classifier f (its parameters need no gradient).
    precision
        ``fp32`` or ``bf16`` (resolved): the dtype of f's products, as :func:`tspg.train.autocast` runs them.
    device
        The device the samples are on.

    Notes
    -----
    On a CPU the rows are picked at each backward pass (a count read by the host), which costs nothing there; on
    other devices that would synchronise with the host at every step, so they use autograd's own backward pass
    under autocast, as does any f that is not a stack of Linear and ReLU layers or whose weights need a gradient.
    """

    def __init__(self, classifier: Classifier, precision: str, device: torch.device) -> None:
        self.classifier, self.precision = classifier, precision
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        params = _dense_relu_params(classifier)
        self.params: list[torch.Tensor] | None = None
        if torch.device(device).type == "cpu" and params is not None and not any(p.requires_grad for p in params):
            self.params = [p.detach() for p in params]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of ``x`` in the products' dtype, as under autocast; the gradient reaches ``x``."""
        if self.params is None:
            with autocast(x.device, self.precision):
                return self.classifier(x)
        return _RowSparseLogits.apply(x, self.classifier.center, self.dtype, *self.params)


@contextmanager
def frozen_weights(module: nn.Module) -> Iterator[None]:
    """Inside: no parameter of ``module`` requires a gradient; after: each one's flag as it was before."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
