"""Adam without ``torch.optim.Optimizer``: torch's own fused update, none of its compiler hooks."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam

from tspg.nn._modules import one_thread

#: Parameters with fewer elements than this are updated on one thread (:func:`tspg.nn._modules.one_thread`): the
#: fused kernel opens a parallel region per tensor, and waking sleeping OpenMP threads for each of G's 44 small
#: tensors cost more than their update (``docs/method.md``, "Small operations on one thread"). G's and D's
#: 4,386 x 512 weights (2.2 million elements) stay on every thread.
PARALLEL_NUMEL = 1 << 20


class Adam:
    """Adam (Kingma and Ba 2015) over a fixed list of parameters, with torch's fused kernel.

    Each :meth:`step` calls ``torch.optim.adam.adam`` (torch's public functional Adam) with ``fused=True``, the
    kernel ``torch.optim.Adam(params, lr, fused=True)`` runs, on state laid out as that class lays it out (float32
    step counts on the parameters' device): the parameters after every step are bit for bit those of
    ``torch.optim.Adam`` (tested). What it leaves out is ``torch.optim.Optimizer``, whose constructor imports
    ``torch._dynamo`` for its ``torch.compile`` hooks: 67 MB of resident memory and about half a second in
    every process that trains, none of it used by tspg (see ``docs/method.md``, "Precision and memory").
    No weight decay, AMSGrad or parameter groups; the moment buffers are allocated at construction. :meth:`step`
    frees the gradients once it has used them, so that they take no memory between steps (D's are gone while G's
    are computed).

    Parameters
    ----------
    params
        The tensors to optimise (each with ``requires_grad``).
    lr
        Learning rate.
    betas
        Decay rates of the first and second moment estimates.
    eps
        Added to the root of the second moment.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got no parameters to optimise")
        if lr < 0 or eps < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Adam settings: lr {lr}, betas {betas}, eps {eps}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.small = {i for i, p in enumerate(self.params) if p.device.type == "cpu" and p.numel() < PARALLEL_NUMEL}

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``set_to_none``, as ``torch.optim`` does by default)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient; then the gradients are freed."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        small = [i for i in live if i in self.small]
        large = [i for i in live if i not in self.small]
        with one_thread():  # the many small tensors: one parallel region each would wake the other threads
            self._update(small)
        self._update(large)
        self.zero_grad()

    def _update(self, idx: list[int]) -> None:
        if idx:
            adam([self.params[i] for i in idx], [self.params[i].grad for i in idx],
                 [self.exp_avgs[i] for i in idx], [self.exp_avg_sqs[i] for i in idx], [],
                 [self.steps[i] for i in idx], fused=True, amsgrad=False, beta1=self.betas[0], beta2=self.betas[1],
                 lr=self.lr, weight_decay=0.0, eps=self.eps, maximize=False)
