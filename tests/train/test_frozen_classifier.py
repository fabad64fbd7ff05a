"""f's logits in G's loss: autocast's numbers, and f's backward pass only for the rows whose hinge is active."""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tspg.nn import Classifier
from tspg.train import GeneratorConfig, adversarial_loss, autocast, new_adversary
from tspg.train._adversarial import AdversarialPlan
from tspg.train._frozen import ROW_BUCKETS, FrozenClassifier

GENES, CLASSES, TARGET = 60, 4, 2


def _frozen_f(seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    f = Classifier(GENES, CLASSES, hidden=(32, 16)).eval()
    f.center.copy_(torch.rand(GENES) * 0.3)
    for p in f.parameters():
        p.requires_grad_(False)
    return f


def _loss_and_grad(logits_of, x: torch.Tensor, kappa: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    logits = logits_of(x)
    loss = adversarial_loss(logits.float(), TARGET, kappa)
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    return logits, loss, torch.zeros_like(x) if grad is None else grad


def _autocast_logits(f: Classifier, precision: str):
    def logits(x):
        with autocast("cpu", precision):
            return f(x)
    return logits


class _CountProducts(TorchDispatchMode):
    """Counts matrix products (``mm``/``addmm``) dispatched while it is active, with their row counts."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.rows: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.n += 1
            self.rows.append(int(args[0].shape[0] if func is torch.ops.aten.mm.default else args[1].shape[0]))
        return func(*args, **(kwargs or {}))


def _margins(logits: torch.Tensor) -> torch.Tensor:
    z = logits.float()
    return z[:, TARGET] - z.masked_fill(torch.nn.functional.one_hot(torch.tensor(TARGET), CLASSES).bool(),
                                        float("-inf")).max(1).values


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_logits_and_gradient_are_autocasts_bit_for_bit(precision):
    """Some rows past the margin, some not: the same logits and the same input gradient as autograd's, exactly."""
    f = _frozen_f()
    x = torch.rand(48, GENES, generator=torch.Generator().manual_seed(1))
    kappa = float(_margins(_autocast_logits(f, precision)(x)).median())  # about half of the rows past it
    frozen = FrozenClassifier(f, precision, torch.device("cpu"))
    assert frozen.params is not None
    z0, l0, g0 = _loss_and_grad(_autocast_logits(f, precision), x, kappa)
    z1, l1, g1 = _loss_and_grad(frozen, x, kappa)
    active = g0.ne(0).any(1)
    assert 0 < int(active.sum()) < len(x)
    assert z1.dtype == z0.dtype and torch.equal(z0, z1)
    assert torch.equal(l0, l1)
    assert torch.equal(g0, g1)
    assert not g1[~active].any()


def test_no_product_runs_back_through_f_when_every_row_is_past_the_margin():
    f = _frozen_f()
    x = torch.rand(32, GENES, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        f.net[-1].bias[TARGET] += 1e3  # f calls every row the target by a wide margin
    frozen = FrozenClassifier(f, "fp32", torch.device("cpu"))
    xr = x.clone().requires_grad_(True)
    loss = adversarial_loss(frozen(xr), TARGET, kappa=5.0) + (xr ** 2).sum()  # x still gets a gradient
    counter = _CountProducts()
    with counter:
        loss.backward()
    assert counter.n == 0
    assert torch.equal(xr.grad, 2 * x)  # only the other term's
    # autograd's own backward pass runs all three products of f's layers for the same zero gradient
    xr2 = x.clone().requires_grad_(True)
    loss2 = adversarial_loss(_autocast_logits(f, "fp32")(xr2), TARGET, kappa=5.0) + (xr2 ** 2).sum()
    counter2 = _CountProducts()
    with counter2:
        loss2.backward()
    assert counter2.n == 3
    assert torch.equal(xr2.grad, xr.grad)


def test_falls_back_to_autograd_where_f_is_not_frozen_or_not_dense_relu():
    f = _frozen_f()
    for p in f.parameters():
        p.requires_grad_(True)
    trained = FrozenClassifier(f, "fp32", torch.device("cpu"))
    assert trained.params is None
    trained(torch.rand(8, GENES)).sum().backward()
    assert f.net[0].weight.grad is not None  # the weights' gradient is autograd's, as before
    g = _frozen_f()
    g.net[1] = torch.nn.Tanh()
    assert FrozenClassifier(g, "fp32", torch.device("cpu")).params is None


@pytest.mark.parametrize("kappa", [0.0, 5.0])
def test_training_steps_are_those_of_autograds_backward_pass(kappa):
    """The plan's steps, with f's row-wise backward pass and with autograd's, give the same losses and weights."""
    rng = np.random.default_rng(0)
    x = rng.random((96, GENES)).astype(np.float32)
    x_target = (rng.random((24, GENES)) * 0.5 + 0.5).astype(np.float32)
    f = _frozen_f()
    cfg = GeneratorConfig(kappa=kappa, precision="fp32")
    plans = []
    for row_wise in (True, False):
        plan = AdversarialPlan(f, *new_adversary(GENES, cfg, 0), x_target, TARGET, cfg, 0, torch.device("cpu"))
        if not row_wise:
            plan.frozen_classifier.params = None  # autograd through f under autocast
        plans.append(plan)
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        batch = torch.as_tensor(x[torch.randperm(len(x), generator=gen)[:32].numpy()])
        a, b = (p.step(batch) for p in plans)
        assert torch.equal(a, b)
    for p, q in zip(plans[0].generator.parameters(), plans[1].generator.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(("n_active", "n_rows"), [(3, 16), (16, 16), (17, 32), (20, 32), (40, 48)])
def test_backward_pass_runs_at_a_few_fixed_row_counts(n_active, n_rows):
    """The products run at the smallest bucket that holds the active rows (else the whole batch): a few shapes,
    not one per count, since every new shape costs oneDNN a kernel and memory; the gradient stays autograd's."""
    assert ROW_BUCKETS == (16, 32)
    f = _frozen_f()
    x = torch.rand(48, GENES, generator=torch.Generator().manual_seed(3))
    margins = _margins(_autocast_logits(f, "fp32")(x)).sort().values
    kappa = float(margins[n_active - 1] + margins[n_active]) / 2  # exactly n_active rows have margin < kappa
    frozen = FrozenClassifier(f, "fp32", torch.device("cpu"))
    xr = x.clone().requires_grad_(True)
    loss = adversarial_loss(frozen(xr).float(), TARGET, kappa)
    counter = _CountProducts()
    with counter:
        (grad,) = torch.autograd.grad(loss, xr)
    assert counter.rows == [n_rows] * 3  # f's three layers
    _, _, ref = _loss_and_grad(_autocast_logits(f, "fp32"), x, kappa)
    assert int(ref.ne(0).any(1).sum()) == n_active
    assert torch.equal(grad, ref)
