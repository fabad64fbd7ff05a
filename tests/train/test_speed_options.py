"""Device and precision choice, early stopping on validation accuracy, and the adversarial step's bookkeeping."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from tspg.data import make_atlas
from tspg.nn import Classifier
from tspg.train import (
    ClassifierConfig,
    GeneratorConfig,
    _hardware,
    autocast,
    config_from_dict,
    config_to_dict,
    fit_classifier,
    fit_generator,
    resolve_device,
)
from tspg.train._hardware import check_precision, resolve_precision


@pytest.fixture(scope="module")
def small():
    atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=30, n_markers=5, seed=2)
    x = atlas.gem.to_numpy(np.float32)
    x = (x - x.min(0)) / np.maximum(x.max(0) - x.min(0), 1e-6)
    y = atlas.labels.astype("category").cat.codes.to_numpy().astype(np.int64)
    tr, va = np.arange(len(x)) % 5 != 0, np.arange(len(x)) % 5 == 0
    clf, _ = fit_classifier(x[tr], y[tr], x[va], y[va], 3, ClassifierConfig(hidden=(32,), epochs=5), progress=False)
    return x, y, tr, va, clf


def _fit(small, **cfg):
    x, y, tr, va, clf = small
    config = GeneratorConfig(**{"epochs": 3, "min_steps_per_epoch": 2, **cfg})
    return fit_generator(clf, x[tr], x[tr & (y == 1)], 1, x[va], config, seed=4, progress=False,
                         x_target_val=x[va & (y == 1)])


@contextlib.contextmanager
def _linear_output_dtypes():
    """Collect the output dtype of every ``nn.Linear`` call made with gradients on (training steps, not scoring)."""
    seen: list[torch.dtype] = []

    def hook(module, args, output):
        if isinstance(module, torch.nn.Linear) and torch.is_grad_enabled():
            seen.append(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.state_dict().values(), b.state_dict().values(),
                                                           strict=True) if p.is_floating_point())


def test_auto_device_is_cuda_only_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device", ["tpu", "mps", "cuda:x"])
def test_bad_devices_name_the_choices(device, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="auto"):
        resolve_device(device)


def test_precision_names_and_autocast():
    assert check_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        check_precision("fp16")
    lin = torch.nn.Linear(4, 3)
    with autocast("cpu", "fp32"):
        assert lin(torch.ones(2, 4)).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert lin(torch.ones(2, 4)).dtype == torch.bfloat16


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_it_is_native(native, monkeypatch):
    monkeypatch.setattr(_hardware, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # asked for: kept (with a warning where it is emulated)
    lin = torch.nn.Linear(4, 3)
    with autocast("cpu", "auto"):
        assert lin(torch.ones(2, 4)).dtype == (torch.bfloat16 if native else torch.float32)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: not native)
    assert resolve_precision("auto", "cuda") == ("fp32" if native else "bf16")
    assert GeneratorConfig().precision == "auto" and ClassifierConfig().precision == "fp32"  # measured defaults


def test_precision_is_a_config_field_that_round_trips():
    gc, cc = GeneratorConfig(precision="bf16"), ClassifierConfig(precision="bf16")
    assert config_from_dict(GeneratorConfig, config_to_dict(gc)).precision == "bf16"
    assert config_from_dict(ClassifierConfig, config_to_dict(cc)).precision == "bf16"
    assert config_from_dict(GeneratorConfig, {}).precision == "fp32"  # manifests written before the field


def test_bf16_training_is_finite_and_repeatable(small):
    g1, h1 = _fit(small, precision="bf16")
    g2, h2 = _fit(small, precision="bf16")
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True))
    # with a transport prior epoch 0 scores it alone (no losses); every trained epoch has finite losses
    trained = [r for r in h1 if r["epoch"] > 0]
    assert trained and all(np.isfinite(r["g_loss"]) and np.isfinite(r["val_dist"]) for r in trained)
    assert all(p.dtype == torch.float32 for p in g1.parameters())


def test_bf16_generator_training_runs_its_matrix_products_in_bfloat16(small):
    # without a prior, so that the kept weights are trained ones (with it, epoch 0 may be kept in both)
    with _linear_output_dtypes() as fp32_dtypes:
        g32, h32 = _fit(small, precision="fp32", prior="none")
    with _linear_output_dtypes() as bf16_dtypes:
        g16, h16 = _fit(small, precision="bf16", prior="none")
    # fp32: every product of G, D and f is fp32; bf16: the training steps' products are bfloat16
    assert fp32_dtypes and set(fp32_dtypes) == {torch.float32}
    assert bf16_dtypes and set(bf16_dtypes) == {torch.bfloat16}
    # the weights stay fp32, and bf16 rounding gives measurably other weights and losses than fp32
    assert all(p.dtype == torch.float32 for p in g16.parameters())
    assert _max_weight_difference(g16, g32) > 1e-4
    assert [r["g_loss"] for r in h16] != pytest.approx([r["g_loss"] for r in h32], rel=1e-5)


def test_stop_at_accuracy_stops_early_and_epochs_stay_the_maximum(small):
    _, h = _fit(small, epochs=8, stop_accuracy=0.0, stop_accuracy_epochs=2)
    assert h[-1]["epoch"] == 2
    _, h = _fit(small, epochs=3, stop_accuracy=0.0, stop_accuracy_epochs=5)
    assert h[-1]["epoch"] == 3
    _, h = _fit(small, epochs=3)
    assert h[-1]["epoch"] == 3


def test_patience_counts_epochs_since_the_last_clear_gain(small):
    from tspg.train._adversarial import _clear_gain, checkpoint_score, kept_row

    full, h_full = _fit(small, epochs=30, patience=0)
    assert h_full[-1]["epoch"] == 30
    # replay the rule on the full run's validation scores: where would patience 3 stop, and which epoch is best?
    scores = [checkpoint_score(r) for r in h_full]
    ref, stale, stop = scores[0], 0, None
    for e, s in enumerate(scores[1:], start=1):
        ref, stale = (s, 0) if _clear_gain(s, ref, "realism") else (ref, stale + 1)
        if stale >= 3:
            stop = e
            break
    assert stop is not None and stop < 30, "the data must make patience 3 stop early for this test to mean anything"
    early, h_early = _fit(small, epochs=30, patience=3)
    assert h_early[-1]["epoch"] == stop
    # the same seed gives the same epochs up to the stop, and the kept weights are the best of those epochs
    assert [r["val_energy"] for r in h_early] == [r["val_energy"] for r in h_full[:stop + 1]]
    best = kept_row(h_early)["epoch"]
    kept = early.state_dict()
    replay, _ = _fit(small, epochs=best, patience=0) if best else (None, None)
    if replay is not None:
        assert all(torch.equal(kept[k], v) for k, v in replay.state_dict().items())
    else:  # the prior alone was kept: G's output layer is still all zeros (G = 0)
        assert not early.net[-2].weight.any() and not early.net[-2].bias.any()


def test_a_gain_below_the_threshold_does_not_reset_the_patience():
    from tspg.train._adversarial import _clear_gain

    assert _clear_gain((0.95, -1.0), None, "realism")
    assert _clear_gain((0.95, -0.98), (0.95, -1.0), "realism")  # 2% lower energy
    assert not _clear_gain((0.95, -0.995), (0.95, -1.0), "realism")  # 0.5%: a gain, but not a clear one
    assert _clear_gain((0.96, -2.0), (0.95, -1.0), "realism")  # more accuracy always counts
    assert not _clear_gain((0.90, -0.5), (0.95, -1.0), "realism")
    assert _clear_gain((0.9, 1.0, -0.999), (0.9, 1.0, -1.0), "margin")  # margin rule: any gain


def test_the_paper_loss_runs_every_epoch():
    from tspg._options import PAPER_LOSS

    assert GeneratorConfig(**{"patience": 25, **PAPER_LOSS}).patience == 0


def test_discriminator_is_trainable_again_after_the_generator_step(small):
    x, y, tr, va, clf = small
    from tspg.train import AdversarialPlan, new_adversary

    cfg = GeneratorConfig()
    plan = AdversarialPlan(clf, *new_adversary(x.shape[1], cfg, 0), x[tr & (y == 1)], 1, cfg, 0, torch.device("cpu"))
    before = [p.detach().clone() for p in plan.discriminator.parameters()]
    losses = plan.step(torch.as_tensor(x[:16]))
    assert losses.shape == (6,) and not losses.requires_grad
    assert all(p.requires_grad for p in plan.discriminator.parameters())
    assert all(not torch.equal(a, p) for a, p in zip(before, plan.discriminator.parameters(), strict=True))  # D moved
    # gradients are freed once used (memory): none of D's or G's is left between steps
    for net in (plan.discriminator, plan.generator):
        assert all(p.grad is None for p in net.parameters())


def test_classifier_trains_in_bf16(small):
    x, y, tr, va, _ = small
    config = ClassifierConfig(hidden=(16,), epochs=2, precision="bf16")
    with _linear_output_dtypes() as bf16_dtypes:
        model, hist = fit_classifier(x[tr], y[tr], x[va], y[va], 3, config, progress=False)
    assert isinstance(model, Classifier) and len(hist) == 2 and np.isfinite(hist[-1]["loss"])
    # the training steps' products ran in bfloat16; the weights stay fp32
    assert bf16_dtypes and set(bf16_dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with _linear_output_dtypes() as fp32_dtypes:
        reference, ref_hist = fit_classifier(x[tr], y[tr], x[va], y[va], 3,
                                             ClassifierConfig(hidden=(16,), epochs=2, precision="fp32"),
                                             progress=False)
    assert fp32_dtypes and set(fp32_dtypes) == {torch.float32}
    assert _max_weight_difference(model, reference) > 1e-4
    assert hist[-1]["loss"] != pytest.approx(ref_hist[-1]["loss"], rel=1e-5)
