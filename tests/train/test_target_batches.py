"""The real target batches of a generator step: smoothed draws with the target's mean and spread, one per step."""

import numpy as np
import pytest
import torch

from tspg.nn import Classifier
from tspg.train import GeneratorConfig, new_adversary
from tspg.train._adversarial import AdversarialPlan

GENES = 30


def _plan(**cfg) -> AdversarialPlan:
    rng = np.random.default_rng(0)
    x_target = (0.5 + 0.05 * rng.standard_normal((40, GENES))).astype(np.float32)
    torch.manual_seed(0)
    f = Classifier(GENES, 3, hidden=(16,)).eval()
    for p in f.parameters():
        p.requires_grad_(False)
    config = GeneratorConfig(precision="fp32", **cfg)
    return AdversarialPlan(f, *new_adversary(GENES, config, 0), x_target, 1, config, 0, torch.device("cpu"))


def test_smoothed_batches_keep_the_targets_mean_and_per_gene_variance():
    plan = _plan(td_smoothing=0.5)
    y = plan.y_target
    draws = torch.cat([plan.target_batch(32) for _ in range(400)])
    assert torch.allclose(draws.mean(0), y.mean(0), atol=0.004)
    assert torch.allclose(draws.var(0), y.var(0), rtol=0.12)
    # fresh points: none of them is a training sample
    assert torch.cdist(draws[:200], y).min() > 1e-4
    assert torch.equal(_plan(td_smoothing=0.0).target_batch(100), y)  # no smoothing, every sample once


@pytest.mark.parametrize(("disc_real", "td_loss", "draws"), [("target", "energy", 1), ("all", "energy", 1),
                                                              ("target", "draw", 1), ("all", "draw", 0)])
def test_one_target_batch_a_step_serves_d_and_the_target_term(disc_real, td_loss, draws):
    """With D on target samples, the target term compares x_adv with D's real batch: one draw a step, not two."""
    plan = _plan(disc_real=disc_real, td_loss=td_loss)
    batches, seen = [], []
    target_batch, td_term = plan.target_batch, plan.td_term

    def counted(n):
        batches.append(target_batch(n))
        return batches[-1]

    def spied(x_adv, y=None):
        seen.append(y)
        return td_term(x_adv, y)

    plan.target_batch, plan.td_term = counted, spied
    x = torch.rand(16, GENES, generator=torch.Generator().manual_seed(1))
    out = plan.step(x)
    assert torch.isfinite(out).all()
    assert len(batches) == draws
    if disc_real == "target":
        assert seen[0] is batches[0]  # the target term got D's real batch itself
    else:
        assert seen[0] is None
