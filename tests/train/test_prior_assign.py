"""Which class's map of the transport prior moves a sample: its own label's (the default) or the nearest centroid's."""

import copy

import numpy as np
import pytest
import torch

from tspg import TSPG
from tspg.cli import _configs
from tspg.data import Dataset, InputError, make_atlas
from tspg.train import ClassifierConfig, GeneratorConfig, config_from_dict, config_to_dict
from tspg.train._adversarial import generate
from tspg.train._classifier import predict_logits
from tspg.train._conditional import check_conditional_config
from tspg.train._losses import adversarial_loss
from tspg.train._prior import RowMoves


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
    init = RowMoves.__init__

    def spy(self, cross, x_train, classes=None):  # the training rows' moves are set up once per fit
        seen.append(classes)
        init(self, cross, x_train, classes)

    monkeypatch.setattr(RowMoves, "__init__", spy)
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
    for assign in ("auto", "label", "nearest"):  # the conditional generator has every setting too
        check_conditional_config(GeneratorConfig(prior_assign=assign))


def test_generate_moves_a_conditional_targets_samples_by_the_classes_given():
    from tspg.nn import ConditionalGenerator, ConditionalPrior, TargetView

    prior = ConditionalPrior(20, 3, 4, [0, 1])
    g = torch.Generator().manual_seed(0)
    for name in ("components", "centroids", "maps", "shifts", "outside_means"):
        getattr(prior, name).copy_(0.1 * torch.randn(getattr(prior, name).shape, generator=g))
    view = TargetView(ConditionalGenerator(20, 2, zero_init=True, prior=prior), 1)  # G = 0: the prior alone
    x = np.random.default_rng(0).random((6, 20), dtype=np.float32)
    classes = np.array([0, 1, 2, -1, 0, 2], dtype=np.int64)
    xt = torch.as_tensor(x)
    with torch.no_grad():
        by_given = prior(xt, torch.ones(6, dtype=torch.long), torch.as_tensor(classes))
        by_nearest = prior(xt, torch.ones(6, dtype=torch.long))
    for given, move in ((classes, by_given), (None, by_nearest)):
        expect = torch.clamp(xt + move, torch.clamp(xt, max=0.0), torch.clamp(xt, min=1.0)).numpy()
        np.testing.assert_allclose(generate(view, x, classes=given)[0], expect, atol=1e-6)
    assert not torch.allclose(by_given, by_nearest)  # the check above tells the two apart


def test_the_conditional_generator_moves_labelled_samples_by_their_own_class(overlapping, monkeypatch):
    from tspg.train._conditional import ConditionalPlan

    model, ds, _ = overlapping
    model = copy.deepcopy(model)
    seen = []
    step = ConditionalPlan.step

    def spy(self, x, y, calls, idx=None, classes=None):
        seen.append((y, classes))
        return step(self, x, y, calls, idx, classes)

    monkeypatch.setattr(ConditionalPlan, "step", spy)
    out = {}
    for assign in ("auto", "nearest"):
        seen.clear()
        model.generator_config = GeneratorConfig(epochs=1, prior_assign=assign)
        model.fit_conditional(ds, "all")
        target = model.classes[1]
        summary = model.generator_summaries[target]
        assert summary["prior_assign"] == ("label" if assign == "auto" else "nearest")
        # training: each row's own class with labels, none with nearest
        assert seen and all((c is None) == (assign == "nearest") for _, c in seen)
        if assign == "auto":
            assert all(np.array_equal(c.numpy(), y) for y, c in seen)
        view = model.generators[target]
        x = model.scale(ds.gem)
        y = _indices(model, ds.labels)
        with_labels = model.perturb(ds.gem, target, labels=ds.labels).x_adv_scaled
        without = model.perturb(ds.gem, target).x_adv_scaled
        np.testing.assert_allclose(without, generate(view, x)[0], atol=1e-6)
        if assign == "auto":
            np.testing.assert_allclose(with_labels, generate(view, x, classes=y)[0], atol=1e-6)
            assert not np.allclose(with_labels, without, atol=1e-4)
            # a conditional run trained before labels reached its prior (no entry in its summary) ignores them
            del summary["prior_assign"]
            np.testing.assert_array_equal(model.perturb(ds.gem, target, labels=ds.labels).x_adv_scaled, without)
        else:
            np.testing.assert_array_equal(with_labels, without)
        out[assign] = model.generator_histories[target][:2]
    # epoch 0 (the prior alone) scores the validation samples as each setting moves them, and the training
    # steps moved the rows by the classes they were given (the same batches and draws otherwise)
    assert out["auto"][0]["val_margin"] != pytest.approx(out["nearest"][0]["val_margin"], abs=1e-4)
    assert out["auto"][1]["g_loss"] != pytest.approx(out["nearest"][1]["g_loss"], abs=1e-5)


def test_the_conditional_checkpoint_scores_realism_against_each_targets_validation_samples(overlapping,
                                                                                            monkeypatch):
    from tspg.train import _conditional
    from tspg.train._losses import energy_loss

    model, ds, _ = overlapping
    model = copy.deepcopy(model)
    seen = []
    validate = _conditional._validate

    def spy(plan, val):
        row, advs = validate(plan, val)
        seen.append((plan, val, row))
        return row, advs

    monkeypatch.setattr(_conditional, "_validate", spy)
    model.generator_config = GeneratorConfig(epochs=2, patience=0)
    model.fit_conditional(ds, "all")
    plan, val, first = seen[0]
    val_rows = model.split.index[model.split == "val"]
    y_val = _indices(model, ds.labels.loc[val_rows])
    energies = []
    for i, t in enumerate(plan.targets):
        assert len(val.refs[i]) == (y_val == t).sum() >= 3  # the target's own validation samples
        xv = val.sets[i]
        moved = torch.clamp(xv + val.moves[i], torch.clamp(xv, max=0.0), torch.clamp(xv, min=1.0))  # G = 0
        energies.append(energy_loss(moved, val.refs[i], plan.centers[i], unbiased=False).item())
    assert first["val_energy"] == pytest.approx(np.mean(energies), rel=1e-5)
    assert first["val_energy_scored"] == 1.0 and np.isnan(first["val_energy_z"])
    later = [r for _, _, r in seen[1:]]
    assert later and all(np.isfinite(r["val_energy_z"]) for r in later)
    # its sign is that of the change of the mean validation energy distance against epoch 0's
    moved = [r for r in later if abs(r["val_energy"] - first["val_energy"]) > 1e-4]
    assert moved and all(np.sign(r["val_energy_z"]) == np.sign(r["val_energy"] - first["val_energy"])
                         for r in moved)


def test_a_label_of_a_class_without_training_samples_counts_as_unknown():
    from tspg.nn import ConditionalPrior, TransportPrior

    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 20, generator=g)
    given = torch.tensor([2, 2, 0, -1])  # class 2 had no training samples: its centroid is FAR away
    targets = (torch.ones(4, dtype=torch.long),)
    for prior, extra in ((TransportPrior(20, 3, 4), ()), (ConditionalPrior(20, 3, 4, [0, 1]), targets)):
        for name in ("components", "centroids", "maps", "shifts"):
            getattr(prior, name).copy_(0.1 * torch.randn(getattr(prior, name).shape, generator=g))
        prior.centroids[2] = 1e15
        with torch.no_grad():
            torch.testing.assert_close(prior(x, *extra, given), prior(x, *extra, torch.tensor([-1, -1, 0, -1])))
            # a fitted class's label is kept
            zeros = torch.zeros(4, dtype=torch.long)
            torch.testing.assert_close(prior(x, *extra, given)[2], prior(x, *extra, zeros)[2])


def test_the_conditional_fit_without_validation_samples_and_its_checks(overlapping):
    from tspg.train import fit_conditional_generator

    model, ds, _ = overlapping
    x = model.scale(ds.gem)
    y = _indices(model, ds.labels)
    cfg = GeneratorConfig(epochs=1)
    with pytest.raises(ValueError, match="y_val has 3 labels for 5 validation samples"):
        fit_conditional_generator(model.classifier, x, y, [0, 1], x[:5], cfg, progress=False, y_val=y[:3])
    # the per-target fit checks them too (it used to drop misaligned labels and move by the nearest centroid)
    from tspg.train import fit_generator

    xt = x[y == 0]
    with pytest.raises(ValueError, match="y_val has 3 labels for 5 samples"):
        fit_generator(model.classifier, x, xt, 0, x[:5], cfg, progress=False, y_train=y, y_val=y[:3])
    with pytest.raises(ValueError, match="y_train has 4 labels for"):
        fit_generator(model.classifier, x, xt, 0, x[:5], cfg, progress=False, y_train=y[:4], y_val=y[:5])
    gen, hist = fit_conditional_generator(model.classifier, x, y, [0, 1], x[:0], cfg, progress=False,
                                          y_val=y[:0])
    # the training part is scored, but its target samples are what L_td pulls towards: no energy ranking, no z
    assert all(r["val_energy_scored"] == 0.0 and np.isnan(r["val_energy_z"]) for r in hist)
    # generate leaves the conditional generator in the mode it found it in
    from tspg.nn import TargetView

    gen.train()
    generate(TargetView(gen, 0), x[:4])
    assert gen.training
    gen.eval()
    generate(TargetView(gen, 1), x[:4])
    assert not gen.training
