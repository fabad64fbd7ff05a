"""Small operations on one thread: BatchNorm's training passes and the one-thread context."""

import pytest
import torch
from torch import nn

from tspg.nn import Discriminator, Generator
from tspg.nn._modules import SerialBatchNorm1d, one_thread


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_one_thread_inside_and_the_count_back_after(two_threads):
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"), one_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 1


def _fit(cls, threads: int, autocast: bool, width: int = 512) -> list[torch.Tensor]:
    """Two training passes of a BatchNorm on fixed data, run with ``threads`` threads; every number it makes."""
    torch.manual_seed(1)
    h = torch.randn(128, width).mul(3).add(1)
    h = h.bfloat16() if autocast else h  # as a dense layer's output under a bfloat16 autocast
    h.requires_grad_()
    bn = cls(width, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_()
    w1, w2 = torch.randn(128, width), torch.randn(128, width)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y1, y2 = bn(h), bn(h * 2)
        ((y1.float() * w1).sum() + (y2.float() * w2).pow(2).sum()).backward()
    finally:
        torch.set_num_threads(old)
    return [y1.detach(), y2.detach(), h.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var,
            bn.num_batches_tracked]


@pytest.mark.parametrize("autocast", [False, True])
def test_training_passes_are_torch_batchnorm_on_one_thread_bit_for_bit(autocast):
    ours = _fit(SerialBatchNorm1d, 2, autocast)
    one = _fit(nn.BatchNorm1d, 1, autocast)
    two = _fit(nn.BatchNorm1d, 2, autocast)
    assert ours[0].dtype == (torch.bfloat16 if autocast else torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(ours, one, strict=True))
    if torch.equal(one[0], two[0]) or torch.equal(one[2], two[2]):
        pytest.skip("this torch's BatchNorm gives the same bits on one and two threads: nothing to tell apart")
    # with two threads torch splits the batch sums, which rounds otherwise: so ours ran on one, forward and backward


def test_eval_mode_state_and_errors_are_torch_batchnorm():
    torch.manual_seed(0)
    stock = nn.BatchNorm1d(16, eps=1e-3, momentum=0.1)
    stock(torch.randn(32, 16) * 2 + 1)
    ours = SerialBatchNorm1d(16, eps=1e-3, momentum=0.1)
    ours.load_state_dict(stock.state_dict())
    assert list(ours.state_dict()) == list(stock.state_dict())
    x = torch.randn(1000, 16)
    assert torch.equal(ours.eval()(x), stock.eval()(x))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours.train()(torch.randn(1, 16))


def test_the_networks_batchnorms_are_serial():
    for net in (Generator(30), Discriminator(30)):
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
        assert norms and all(type(m) is SerialBatchNorm1d for m in norms)
