"""fp32 products through oneDNN: only where they stay exact fp32, only in training, the setting put back after."""

import numpy as np
import pytest
import torch

import tspg.train._hardware as hw
from tspg.nn import Classifier, Generator, seeded
from tspg.train import ClassifierConfig, GeneratorConfig, fit_classifier, generate, predict_logits
from tspg.train._adversarial import AdversarialPlan, new_adversary

flags = hw._mkldnn_matmul_flags()
needs_flag = pytest.mark.skipif(flags is None, reason="this torch has no torch.backends.mkldnn.matmul.fp32_precision")


@needs_flag
def test_the_setting_is_changed_only_inside_and_put_back(monkeypatch):
    before = flags.fp32_precision
    with hw.fp32_products():
        inside = flags.fp32_precision
    assert flags.fp32_precision == before
    assert inside == ("bf16" if hw.onednn_fp32_is_exact() else before)
    # where the probe finds oneDNN rounding to bf16, nothing is changed
    monkeypatch.setattr(hw, "onednn_fp32_is_exact", lambda: False)
    with hw.fp32_products():
        assert flags.fp32_precision == before
    # an exception inside still puts it back
    monkeypatch.undo()
    with pytest.raises(KeyError), hw.fp32_products():
        raise KeyError("x")
    assert flags.fp32_precision == before


@needs_flag
def test_the_user_setting_turns_it_off():
    import tspg

    before = flags.fp32_precision
    try:
        tspg.settings.onednn_fp32 = False
        with hw.fp32_products():
            assert flags.fp32_precision == before
        tspg.settings.onednn_fp32 = True
        with hw.fp32_products():
            assert flags.fp32_precision == ("bf16" if hw.onednn_fp32_is_exact() else before)
    finally:
        tspg.settings.onednn_fp32 = True
    assert flags.fp32_precision == before


def test_products_inside_are_fp32_exact():
    # 1 + 2^-12 is not a bf16 number: a product that rounded its operands to bf16 would give 'inner', not this
    with hw.fp32_products():
        for rows, inner, cols in ((128, 4096, 512), (512, 128, 4096), (16, 1024, 4096)):
            a = torch.full((rows, inner), 1 + 2**-12)
            out = a @ torch.ones(inner, cols)
            assert bool((out == inner * (1 + 2**-12)).all()), (rows, inner, cols)
        g = torch.Generator().manual_seed(0)
        x, w = torch.rand(128, 2000, generator=g), torch.rand(300, 2000, generator=g)
        ref = x.double() @ w.double().T
        rel = float((torch.nn.functional.linear(x, w).double() - ref).abs().max() / ref.abs().max())
        assert rel < 1e-5  # fp32 sums' rounding (products from bf16 operands: about 1e-3)


@needs_flag
def test_training_runs_inside_and_gives_the_same_classifier_twice():
    seen = []
    rng = np.random.default_rng(0)
    x = rng.random((60, 40), dtype=np.float32)
    y = np.arange(60) % 3
    before = flags.fp32_precision
    fits = []
    for _ in range(2):
        with seeded(0):
            clf = Classifier(40, 3, (16,))
        clf.register_forward_hook(lambda *_: seen.append(flags.fp32_precision))
        config = ClassifierConfig(hidden=(16,), epochs=2, patience=0)
        model, _ = fit_classifier(x[:48], y[:48], x[48:], y[48:], 3, config, progress=False, classifier=clf)
        fits.append(model.state_dict())
    assert set(seen) == {"bf16" if hw.onednn_fp32_is_exact() else before}
    assert flags.fp32_precision == before
    for k, v in fits[0].items():
        assert torch.equal(v, fits[1][k]), k


@needs_flag
def test_the_generator_step_runs_inside_and_inference_outside():
    """A per-target generator's step has a few fixed product shapes; inference meets any batch size, and oneDNN
    keeps a kernel for every shape it meets, so inference's full batches (one shape) run inside and its last,
    partial batch and other predictions stay with torch's default kernels (memory)."""
    seen = []
    before = flags.fp32_precision
    routed = "bf16" if hw.onednn_fp32_is_exact() else before
    with seeded(0):
        f = Classifier(30, 3, (16,)).eval()
    for p in f.parameters():
        p.requires_grad_(False)
    x = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    config = GeneratorConfig(precision="fp32", prior="none", batch_size=16)
    plan = AdversarialPlan(f, *new_adversary(30, config, 0), x[:20], 1, config, 0, torch.device("cpu"))
    plan.generator.register_forward_hook(lambda *_: seen.append(flags.fp32_precision))
    plan.step(torch.as_tensor(x[:16]))
    assert seen and set(seen) == {routed} and flags.fp32_precision == before
    seen.clear()
    f.register_forward_hook(lambda *_: seen.append(flags.fp32_precision))
    predict_logits(f, x)
    g = Generator(30)
    g.register_forward_hook(lambda *_: seen.append(flags.fp32_precision))
    generate(g, x)  # 40 rows: one partial batch
    assert seen == [before, before]
    seen.clear()
    generate(g, x, batch_size=16)  # 16 + 16 + 8 rows
    assert seen == [routed, routed, before] and flags.fp32_precision == before
