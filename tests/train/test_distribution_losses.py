"""The distribution-level target terms: unbiased, zero in expectation for the target distribution, finite gradients."""

import numpy as np
import pytest
import torch

from tspg.tl import energy_distance
from tspg.train._losses import (
    _cross_and_self_sq_dists,
    _sq_dists,
    energy_gain_z,
    energy_loss,
    median_bandwidth,
    mmd_loss,
    sinkhorn_loss,
    target_distance_loss,
)


def _batches(shift: float = 0.0, n: int = 64, g: int = 20, seed: int = 0, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, g, generator=gen) * scale + shift, torch.randn(n, g, generator=gen)


def test_energy_v_statistic_matches_the_evaluation_metric():
    x, y = _batches(0.3)
    v = energy_loss(x, y, unbiased=False).item()
    assert v == pytest.approx(energy_distance(x.double().numpy(), y.double().numpy()), rel=1e-4)


def test_energy_is_unbiased_where_the_v_statistic_rewards_collapse():
    # same distribution: the U-statistic averages to ~0, the V-statistic is biased upwards (its zero diagonal)
    u = [energy_loss(*_batches(seed=s)).item() for s in range(20)]
    v = [energy_loss(*_batches(seed=s), unbiased=False).item() for s in range(20)]
    assert abs(np.mean(u)) < 0.05 < np.mean(v)
    # a collapsed batch (every sample at the target mean) is far from the target under both
    x, y = _batches()
    assert energy_loss(torch.zeros_like(x), y).item() > 1.0


def test_draw_loss_prefers_collapse_and_energy_does_not():
    # the paper's L1 to independent draws is lower for every sample at the centre than for real target samples
    gen = torch.Generator().manual_seed(1)
    y, draw = torch.randn(256, 30, generator=gen), torch.randn(256, 30, generator=gen)
    assert target_distance_loss(torch.zeros_like(y), draw) < target_distance_loss(y, draw)
    fresh = torch.randn(256, 30, generator=gen)
    assert energy_loss(torch.zeros_like(y), fresh) > energy_loss(y, fresh) + 1.0


def test_energy_grows_with_shift_and_spread_and_centering_changes_nothing():
    vals = [energy_loss(*_batches(s)).item() for s in (0.0, 0.5, 1.0)]
    assert vals[0] < vals[1] < vals[2]
    assert energy_loss(*_batches(scale=2.0)).item() > 0.5
    x, y = _batches(0.5)
    c = torch.full((20,), 100.0)
    assert energy_loss(x + c, y + c, center=c).item() == pytest.approx(energy_loss(x, y).item(), abs=1e-4)


@pytest.mark.parametrize("kind", ["energy", "mmd", "sinkhorn"])
def test_gradients_are_finite_with_duplicate_points(kind):
    x, y = _batches(0.5, n=16, g=8)
    x = torch.cat([x[:8], x[:8]]).requires_grad_(True)  # every point twice: distance 0 inside the batch
    y = torch.cat([y, x[:4].detach()])  # and a real point equal to a perturbed one
    if kind == "energy":
        loss = energy_loss(x, y)
    elif kind == "mmd":
        loss = mmd_loss(x, y, median_bandwidth(y) * torch.tensor([0.5, 1.0, 2.0]))
    else:
        loss = sinkhorn_loss(x, y, reg=float(median_bandwidth(y)) ** 2 * 0.05)
    loss.backward()
    assert loss.shape == () and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("unbiased", [True, False])
def test_energy_gradient_of_the_fused_products_is_autograds(unbiased):
    """The training step's energy term takes its distances from one product and its gradient from one more
    (``_CrossAndSelfSqDists``); value and gradient are those of autograd through the plain expansion. (Duplicate
    points, whose distance is 0 up to rounding, are covered by the finite-gradient test above.)"""
    x, y = _batches(0.5, n=24, g=30)
    x, y = x.double(), y.double()
    center = y.mean(0)

    def plain(a):
        a, b = a - center, y - center
        within = (lambda m: (m.sum() - m.diagonal().sum()) / (len(m) * (len(m) - 1))) if unbiased else torch.mean
        dist = [torch.where(d > 0, d.clamp_min(1e-30).sqrt(), d.new_zeros(()))
                for d in (_sq_dists(a, b), _sq_dists(a, a), _sq_dists(b, b))]
        return 2 * dist[0].mean() - within(dist[1]) - within(dist[2])

    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fused, ref = energy_loss(a, y, center, unbiased=unbiased), plain(b)
    fused.backward()
    ref.backward()
    assert fused.item() == pytest.approx(ref.item(), rel=1e-12)
    if unbiased:  # the V-statistic's diagonal distances are 0 up to rounding: no gradient to compare (validation only)
        assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)
        assert b.grad.abs().max() > 1e-4
    # the fused path's own gradient against finite differences, where no distance is 0
    z = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: torch.stack([d.sum() for d in _cross_and_self_sq_dists(t, w)]), (z,))
    assert torch.autograd.gradcheck(lambda t: energy_loss(t, w), (z,))


def test_mmd_and_sinkhorn_grow_with_shift():
    bw = torch.tensor([2.0, 4.0, 8.0])
    m = [mmd_loss(*_batches(s), bw).item() for s in (0.0, 0.5, 1.0)]
    assert abs(m[0]) < 0.01 < m[1] < m[2]
    s = [sinkhorn_loss(*_batches(v), reg=2.0).item() for v in (0.0, 0.5, 1.0)]
    assert s[0] < s[1] < s[2]


def test_median_bandwidth():
    y = torch.tensor([[0.0], [1.0], [3.0]])
    assert median_bandwidth(y).item() == pytest.approx(2.0)  # distances 1, 3, 2
    assert median_bandwidth(torch.zeros(4, 3)).item() == 1.0


def test_energy_gain_z_tells_a_real_gain_from_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(8, 30, generator=g)
    x = torch.randn(60, 30, generator=g)
    shifted = x + 0.15  # a small shift of every gene
    state = torch.get_rng_state()
    z = energy_gain_z(shifted, x, y, n_boot=50, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # a local generator: the global stream is untouched
    # the same figure from a brute-force paired bootstrap: the same resamples (the same generator calls), each
    # scored by the V-statistic energy distance of the resampled sets
    gen = torch.Generator().manual_seed(3)
    ix, iy = torch.randint(0, 60, (50, 60), generator=gen), torch.randint(0, 8, (50, 8), generator=gen)

    def change(rows_x, rows_y):
        return float(energy_loss(x[rows_x], y[rows_y], unbiased=False)
                     - energy_loss(shifted[rows_x], y[rows_y], unbiased=False))

    boot = np.array([change(ix[b], iy[b]) for b in range(50)])
    observed = change(torch.arange(60), torch.arange(8))
    assert observed < 0
    assert z == pytest.approx(observed / boot.std(ddof=1), rel=1e-3)
    # a large move onto y's distribution is a gain of many standard errors, the reverse a loss; no move: 0
    far = x + 1.0
    assert energy_gain_z(far, x, y) < -4 < 4 < energy_gain_z(x, far, y)
    assert energy_gain_z(x, x.clone(), y) == 0.0
    assert energy_gain_z(far, x, y, center=y.mean(0)) == pytest.approx(energy_gain_z(far, x, y), rel=1e-4)
    assert np.isnan(energy_gain_z(x, x + float("nan"), y))
    with pytest.raises(ValueError, match="n_boot"):
        energy_gain_z(x, far, y, n_boot=1)
