"""tspg's Adam: torch's fused update bit for bit, without importing torch's compiler stack."""

import subprocess
import sys

import pytest
import torch

from tspg.train._optim import Adam


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3))


def _train(net: torch.nn.Module, opt, steps: int = 25) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    frozen = net[3].bias  # a parameter without a gradient for a while is skipped, as torch.optim skips it
    frozen.requires_grad_(False)
    for i in range(steps):
        if i == 10:
            frozen.requires_grad_(True)
        x, y = torch.randn(32, 12, generator=gen), torch.randint(0, 3, (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("lr", [1e-3, 2e-4])
def test_same_parameters_as_torch_fused_adam_bit_for_bit(lr):
    ours = _train(net := _net(0), Adam(net.parameters(), lr=lr))
    theirs = _train(net := _net(0), torch.optim.Adam(net.parameters(), lr=lr, fused=True))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert not torch.equal(ours[0], _net(0)[0].weight)  # it did train


def test_step_frees_the_gradients_it_used():
    net = _net(0)
    opt = Adam(net.parameters())
    net(torch.randn(8, 12)).sum().backward()
    opt.step()
    assert all(p.grad is None for p in net.parameters())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="no parameters"):
        Adam([])
    with pytest.raises(ValueError, match="invalid Adam settings"):
        Adam(_net(0).parameters(), lr=-1.0)


def test_training_does_not_import_torch_dynamo():
    # torch.optim.Optimizer imports torch._dynamo (67 MB resident); no phase of a tspg fit may need it
    code = """
import sys
import numpy as np
from tspg.train import ClassifierConfig, GeneratorConfig, fit_classifier, fit_generator
rng = np.random.default_rng(0)
y = np.repeat(np.arange(3), 30)
x = np.clip(rng.normal(0.5, 0.1, (90, 40)) + 0.2 * (y[:, None] == np.arange(40) % 3), 0, 1).astype(np.float32)
clf, _ = fit_classifier(x, y, x[:9], y[:9], 3, ClassifierConfig(epochs=2, hidden=(16,)), progress=False)
fit_generator(clf, x, x[y == 2], 2, x[:9], GeneratorConfig(epochs=2, batch_size=32), y_train=y, progress=False)
print("torch._dynamo" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split()[-1] == "False"


def _mixed(seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [torch.randn(1 << 20, requires_grad=True), torch.randn(64, 8, requires_grad=True),
            torch.randn(300, requires_grad=True)]


def _fit_mixed(params, opt) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        loss = sum((p * torch.randn(p.shape, generator=gen)).pow(2).sum() for p in params)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params]


def test_large_and_small_tensors_as_torch_fused_adam_bit_for_bit():
    old = torch.get_num_threads()
    torch.set_num_threads(2)  # the small tensors then run on fewer threads than the large one
    try:
        ours = _fit_mixed(p := _mixed(0), Adam(p, lr=1e-3))
        theirs = _fit_mixed(p := _mixed(0), torch.optim.Adam(p, lr=1e-3, fused=True))
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_small_tensors_are_updated_on_one_thread(monkeypatch):
    from tspg.train import _optim

    seen = []
    real = _optim.adam

    def spy(params, *a, **k):
        seen.append((sorted(p.numel() for p in params), torch.get_num_threads()))
        return real(params, *a, **k)

    monkeypatch.setattr(_optim, "adam", spy)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        params = _mixed(0)
        opt = Adam(params)
        sum(p.sum() for p in params).backward()
        opt.step()
    finally:
        torch.set_num_threads(old)
    assert seen == [([300, 512], 1), ([1 << 20], 2)]
