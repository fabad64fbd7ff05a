"""D's paired call: two batches through shared products, each normalised by its own BatchNorm statistics."""

import copy
import re

import pytest
import torch

from tspg.nn import Discriminator


@pytest.mark.parametrize("sizes", [(16, 16), (9, 16)])
def test_pair_is_two_calls(sizes):
    """Scores, running statistics and weight gradients of ``pair(a, b)`` are those of ``D(a)`` then ``D(b)``."""
    torch.manual_seed(0)
    d1 = Discriminator(30, hidden=(24, 12)).train()
    d2 = copy.deepcopy(d1)
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand(sizes[0], 30, generator=gen), torch.rand(sizes[1], 30, generator=gen) + 0.5
    ra, rb = d1(a), d1(b)
    pa, pb = d2.pair(a, b)
    assert pa.shape == ra.shape and pb.shape == rb.shape
    torch.testing.assert_close(pa, ra, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pb, rb, rtol=1e-5, atol=1e-6)
    # one batch's statistics do not leak into the other's scores: b moved alone changes only b's scores
    pa2, _ = d2.pair(a, b + 3.0)
    torch.testing.assert_close(pa2, pa)
    # running statistics: a's, then b's, as two calls update them
    d3, d4 = copy.deepcopy(d1), copy.deepcopy(d1)
    d3(a), d3(b)
    d4.pair(a, b)
    for (n3, x3), (_, x4) in zip(d3.state_dict().items(), d4.state_dict().items(), strict=True):
        torch.testing.assert_close(x3, x4, rtol=1e-5, atol=1e-6, msg=n3)
    d5, d6 = copy.deepcopy(d1), copy.deepcopy(d1)
    (d5(a).square().sum() + (1 - d5(b)).square().sum()).backward()
    sa, sb = d6.pair(a, b)
    (sa.square().sum() + (1 - sb).square().sum()).backward()
    for (n5, p5), (_, p6) in zip(d5.named_parameters(), d6.named_parameters(), strict=True):
        # a dense layer's bias before a training BatchNorm has a gradient of exactly 0 but for rounding (about 1e-6
        # here): only there a wider absolute tolerance
        before_bn = re.fullmatch(r"net\.\d+\.0\.bias", n5) is not None
        torch.testing.assert_close(p5.grad, p6.grad, rtol=1e-4, atol=1e-5 if before_bn else 1e-6, msg=n5)
