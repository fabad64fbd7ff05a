"""Which class's map of the transport prior moves a sample: its own label's (the default) or the nearest centroid's."""

import copy

import numpy as np
import pytest
import torch

from tspg import TSPG
from tspg.cli import _configs
from tspg.data import Dataset, InputError, make_atlas
from tspg.train import ClassifierConfig, CrossFittedTransport, GeneratorConfig, config_from_dict, config_to_dict
from tspg.train._adversarial import generate
from tspg.train._classifier import predict_logits
from tspg.train._conditional import check_conditional_config
from tspg.train._losses import adversarial_loss


@pytest.fixture(scope="module")
def overlapping():
    """Three classes that overlap (weak markers, loud noise): the nearest centroid often is not a sample's class."""
    a = make_atlas(n_classes=3, n_genes=60, samples_per_class=40, n_markers=5, marker_strength=0.5, noise=1.2,
                   seed=7)
    ds = Dataset(a.gem, a.labels.astype(str))
    model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=2), seed=0, progress=False, device="cpu",
                 val_size=0.3)
    model.fit_classifier(ds)
    target = model.classes[0]
    model.fit_generator(ds, target)
    return model, ds, target


def _indices(model, labels):
    return np.array([model.classes.index(v) for v in labels], dtype=np.int64)


def test_prior_takes_given_classes_and_assigns_rows_marked_unknown(overlapping):
    model, ds, target = overlapping
    prior = model.generators[target].prior
    x = torch.as_tensor(model.scale(ds.gem))
    y = torch.as_tensor(_indices(model, ds.labels))
    nearest = prior.assign(x)
    assert 0.3 < (nearest == y).float().mean() < 0.95  # the centroids mislead here
    mixed = torch.where(torch.arange(len(y)) % 2 == 0, y, torch.full_like(y, -1))
    with torch.no_grad():
        by_label, by_nearest, by_mixed = prior(x, y), prior(x), prior(x, mixed)
    even = torch.arange(len(y)) % 2 == 0
    torch.testing.assert_close(by_mixed[even], by_label[even])
    torch.testing.assert_close(by_mixed[~even], by_nearest[~even])
    wrong = nearest != y
    assert (by_label[wrong] - by_nearest[wrong]).abs().amax(1).min() > 1e-4  # another class's map


def test_perturb_moves_each_labelled_sample_by_its_own_class_map(overlapping):
    model, ds, target = overlapping
    gen = model.generators[target]
    x = model.scale(ds.gem)
    y = _indices(model, ds.labels)
    with_labels = model.perturb(ds.gem, target, labels=ds.labels).x_adv_scaled
    without = model.perturb(ds.gem, target).x_adv_scaled
    np.testing.assert_allclose(with_labels, generate(gen, x, classes=y)[0], atol=1e-6)
    np.testing.assert_allclose(without, generate(gen, x)[0], atol=1e-6)
    nearest = gen.prior.assign(torch.as_tensor(x)).numpy()
    same = nearest == y
    np.testing.assert_allclose(with_labels[same], without[same], atol=1e-5)
    assert np.abs(with_labels[~same] - without[~same]).max(1).min() > 1e-4
    # a label the model does not know (and a missing one) falls back to the nearest centroid for that sample
    odd = ds.labels.copy()
    rows = np.flatnonzero(~same)[:2]
    odd.iloc[rows[0]] = "Not a class"
    odd.iloc[rows[1]] = None
    moved = model.perturb(ds.gem, target, labels=odd).x_adv_scaled
    np.testing.assert_allclose(moved[rows], without[rows], atol=1e-5)


def test_nearest_ignores_labels_and_validation_follows_the_setting(overlapping):
    model, ds, target = overlapping
    model = copy.deepcopy(model)  # refitted here: the other tests keep the fixture's generator
    results, margins = {}, {}
    for assign in ("label", "nearest"):
        model.generator_config = GeneratorConfig(epochs=1, prior_assign=assign)
        model.fit_generator(ds, target)
        gen = model.generators[target]
        # epoch 0 (the prior alone, G = 0) on the validation samples f does not already call the target
        val = model.split.index[model.split == "val"]
        xv = model.scale(ds.gem.loc[val])
        fresh = predict_logits(model.classifier, xv).argmax(1).numpy() != model.classes.index(target)
        xt = torch.as_tensor(xv[fresh])
        classes = torch.as_tensor(_indices(model, ds.labels.loc[val])[fresh])
        with torch.no_grad():
            moved = xt + (gen.prior(xt, classes) if assign == "label" else gen.prior(xt))
        v_adv = torch.clamp(moved, torch.clamp(xt, max=0.0), torch.clamp(xt, min=1.0))
        logits = predict_logits(model.classifier, v_adv.numpy())
        t = model.classes.index(target)
        first = model.generator_histories[target][0]
        assert first["val_accuracy"] == pytest.approx((logits.argmax(1) == t).float().mean().item(), abs=1e-6)
        margin = -adversarial_loss(logits, t, model.generator_config.kappa).item()
        assert first["val_margin"] == pytest.approx(margin, abs=1e-5)
        margins[assign] = margin
        results[assign] = (model.perturb(ds.gem, target, labels=ds.labels).x_adv_scaled,
                           model.perturb(ds.gem, target).x_adv_scaled)
    np.testing.assert_array_equal(*results["nearest"])  # labels change nothing with nearest
    assert not np.allclose(*results["label"], atol=1e-4)
    assert abs(margins["label"] - margins["nearest"]) > 1e-3  # the check above tells the two settings apart


def test_training_moves_each_row_by_its_label_only_with_label(overlapping, monkeypatch):
    model, ds, target = overlapping
    model = copy.deepcopy(model)
    seen = []
    move = CrossFittedTransport.move

    def spy(self, x, spans, classes=None):
        seen.append(classes)
        return move(self, x, spans, classes)

    monkeypatch.setattr(CrossFittedTransport, "move", spy)
    train = model.split.index[model.split == "train"]
    labels = set(_indices(model, ds.labels.loc[train]).tolist())
    for assign, expect in (("auto", True), ("nearest", False)):
        seen.clear()
        model.generator_config = GeneratorConfig(epochs=1, prior_assign=assign)
        model.fit_generator(ds, target)
        assert seen and all((c is not None) == expect for c in seen)
        if expect:
            assert set(torch.cat(seen).tolist()) == labels


def test_prior_assign_is_checked_old_configs_read_as_nearest_and_the_flag_sets_it():
    with pytest.raises(InputError, match="prior_assign"):
        GeneratorConfig(prior_assign="label_if_known")
    assert GeneratorConfig().prior_assign == "auto"
    assert config_from_dict(GeneratorConfig, {"epochs": 3}).prior_assign == "nearest"
    assert config_from_dict(GeneratorConfig, config_to_dict(GeneratorConfig())).prior_assign == "auto"
    assert _configs({"prior_assign": "nearest"})[1].prior_assign == "nearest"
    with pytest.raises(InputError, match="prior_assign=label"):
        check_conditional_config(GeneratorConfig(prior_assign="label"))
    check_conditional_config(GeneratorConfig(prior_assign="nearest"))


def test_generate_refuses_classes_for_the_conditional_prior():
    from tspg.nn import ConditionalGenerator, ConditionalPrior, TargetView

    view = TargetView(ConditionalGenerator(20, 2, prior=ConditionalPrior(20, 3, 4, [0, 1])), 0)
    x = np.random.default_rng(0).random((5, 20), dtype=np.float32)
    with pytest.raises(ValueError, match="per-target generator"):
        generate(view, x, classes=np.zeros(5, dtype=np.int64))
    assert generate(view, x)[0].shape == (5, 20)
