"""The classifier f: input centring, and learning many classes."""

import numpy as np
import torch

from tspg.data import make_atlas
from tspg.nn import Classifier
from tspg.train import ClassifierConfig, fit_classifier


def _scaled_atlas(n_classes: int, n_genes: int, per_class: int):
    a = make_atlas(n_classes=n_classes, n_genes=n_genes, samples_per_class=per_class, n_markers=10, seed=3)
    x = a.gem.to_numpy(np.float32)
    y = a.labels.astype("category").cat.codes.to_numpy().astype(np.int64)
    rng = np.random.default_rng(0)
    part = rng.permutation(len(y)) % 5  # 0-2 train, 3 validation, 4 test
    lo, hi = x[part <= 2].min(0), x[part <= 2].max(0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return [(x[m], y[m]) for m in (part <= 2, part == 3, part == 4)]


def test_forty_classes_are_learned():
    # Min-max scaled inputs all sit near 0.5; without centring the classifier stayed near chance on this atlas
    # (0.12 held out after 12 epochs; logistic regression 1.0).
    (xtr, ytr), (xva, yva), (xte, yte) = _scaled_atlas(40, 1000, 25)
    model, history = fit_classifier(xtr, ytr, xva, yva, 40, ClassifierConfig(epochs=12, patience=0), progress=False)
    np.testing.assert_allclose(model.center.numpy(), xtr.mean(0), atol=1e-6)
    with torch.no_grad():
        acc = (model(torch.as_tensor(xte)).argmax(1).numpy() == yte).mean()
    assert acc >= 0.95, (acc, history[-1])
    # the last step's gradients are dropped: a trained classifier holds its weights, not a second copy of them
    assert all(p.grad is None for p in model.parameters())


def test_centre_is_part_of_the_function():
    model = Classifier(6, 3).eval()
    # multiples of 1/64: x + 0.5 - 0.5 is exactly x, so the two calls must agree bit for bit (with torch.rand the
    # rounding of x + 0.5 sometimes moved an output by more than allclose's tolerance)
    x = torch.randint(0, 64, (4, 6), generator=torch.Generator().manual_seed(0)).float() / 64
    before = model(x)
    model.center.fill_(0.5)
    assert not torch.allclose(before, model(x))
    assert torch.equal(before, model(x + 0.5))
    assert "center" in model.state_dict()


def test_stopping_at_a_near_zero_validation_loss_keeps_the_same_classifier():
    # once the best validation loss is below MIN_DELTA nothing can replace it: stopping there must give exactly the
    # classifier that running every epoch (patience 0) keeps
    from tspg.train._classifier import MIN_DELTA

    (xtr, ytr), (xva, yva), _ = _scaled_atlas(4, 200, 30)
    early, h_early = fit_classifier(xtr, ytr, xva, yva, 4, ClassifierConfig(epochs=25, patience=10), progress=False)
    full, h_full = fit_classifier(xtr, ytr, xva, yva, 4, ClassifierConfig(epochs=25, patience=0), progress=False)
    kept = [r["epoch"] for r in h_early if r["kept"]]
    assert len(h_full) == 25 and len(h_early) < 25
    assert kept == [r["epoch"] for r in h_full if r["kept"]] == [len(h_early)]
    assert h_early[-1]["val_loss"] < MIN_DELTA
    for k, v in early.state_dict().items():
        assert torch.equal(v, full.state_dict()[k]), k
