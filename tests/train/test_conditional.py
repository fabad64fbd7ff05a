"""The conditional generator G(x, t): its prior, its batches, its training, its file, and the run that uses it."""

import json

import numpy as np
import pytest
import torch
from clihelp import tspg

from tspg import TSPG
from tspg._names import CONDITIONAL_WEIGHTS, GENERATOR_WEIGHTS, MANIFEST, target_dirname
from tspg.data import InputError, load_dataset, make_atlas
from tspg.nn import ConditionalGenerator, TargetView, perturb
from tspg.train import (
    ConditionalPlan,
    GeneratorConfig,
    adaptive_shrink_factors,
    check_conditional_config,
    fit_conditional_prior,
    fit_transport_prior,
    shrink_factors,
    shrunk_class_means,
)
from tspg.train._conditional import GROUP_SIZE, new_conditional_adversary
from tspg.train._prior import class_variances


@pytest.mark.parametrize(("kind", "covariance"), [("ot", "own"), ("ot", "blend"), ("mean", "own")])
def test_the_conditional_prior_is_each_targets_own_prior(atlas, kind, covariance):
    x, y, _ = atlas
    targets = [2, 0, 3]
    cond = fit_conditional_prior(x, y, targets, 4, kind=kind, n_components=10, covariance=covariance)
    xt = torch.as_tensor(x)
    for i, t in enumerate(targets):
        own = fit_transport_prior(x, y, t, 4, kind=kind, n_components=10, covariance=covariance)
        with torch.no_grad():
            want = own(xt).numpy()
            got = cond(xt, torch.full((len(x),), i)).numpy()
        np.testing.assert_allclose(got, want, atol=5e-5)
        assert np.abs(got[y == t]).max() < 1e-5  # a target's own samples stay


@pytest.mark.parametrize("kind", ["ot", "mean"])
@pytest.mark.parametrize("shrink", ["eb", "js"])
def test_the_shrunk_conditional_prior_moves_each_class_mean_by_the_difference_of_shrunk_means(atlas, kind, shrink):
    x, y, _ = atlas
    targets = [2, 0]
    cond = fit_conditional_prior(x, y, targets, 4, kind=kind, n_components=10, shrink=shrink)
    shrunk = shrunk_class_means(x, y, [0, 1, 2, 3], shrink)
    for i, t in enumerate(targets):
        for c in {0, 1, 2, 3} - {t}:
            rows = torch.as_tensor(x[y == c])
            with torch.no_grad():
                moved = cond(rows, torch.full((len(rows),), i), torch.full((len(rows),), c)).numpy().mean(0)
            np.testing.assert_allclose(moved, shrunk[t] - shrunk[c], atol=2e-4)
        with torch.no_grad():  # the target's own samples stay
            own = torch.as_tensor(x[y == t])
            assert np.abs(cond(own, torch.full((len(own),), i), torch.full((len(own),), t)).numpy()).max() < 1e-5
    plain = fit_conditional_prior(x, y, targets, 4, kind=kind, n_components=10)
    unshrunk = fit_conditional_prior(x, y, targets, 4, kind=kind, n_components=10, shrink="none")
    for name, buf in plain.named_buffers():
        assert torch.equal(buf, dict(unshrunk.named_buffers())[name])
    with pytest.raises(ValueError, match="shrink"):
        fit_conditional_prior(x, y, targets, 4, n_components=10, shrink="yes")


def test_shrunk_class_means_of_two_classes_are_the_pairs_own_shrinkage():
    # with two classes each deviation from the mean of the means is half the pair's difference, with half its
    # standard error: the shrunk difference is the per-target prior's shrunk mean shift
    rng = np.random.default_rng(2)
    true = np.r_[np.full(15, 2.5), np.zeros(285)]
    x = np.concatenate([rng.normal(0, 1, (10, 300)), rng.normal(true, 1.5, (14, 300))])
    y = np.repeat([0, 1], [10, 14])
    var = class_variances(x, y, [0, 1])
    d = x[y == 0].mean(0) - x[y == 1].mean(0)
    for shrink, rule in (("eb", adaptive_shrink_factors), ("js", shrink_factors)):
        m = shrunk_class_means(x, y, [0, 1], shrink)
        np.testing.assert_allclose(m[0] - m[1], rule(d, var[0], 10, var[1], 14) * d, atol=1e-6)


def test_shrunk_class_means_are_closer_to_the_true_differences_between_classes():
    # 12 classes x 600 genes, 8 samples each; each class stands out in its own 10 genes by 2 noise SDs
    rng = np.random.default_rng(0)
    true = np.zeros((12, 600))
    for c in range(12):
        true[c, 10 * c:10 * c + 10] = 2.0
    x = np.concatenate([rng.normal(true[c], 1.0, (8, 600)) for c in range(12)])
    y = np.repeat(np.arange(12), 8)
    raw = {c: x[y == c].mean(0) for c in range(12)}

    def error(m):
        return np.mean([np.sum((m[t] - m[c] - true[t] + true[c]) ** 2) for t in range(12) for c in range(12) if c != t])

    for shrink in ("eb", "js"):
        shrunk = shrunk_class_means(x, y, list(range(12)), shrink)
        assert error(shrunk) < (0.2 if shrink == "eb" else 0.5) * error(raw)
        # each class's own genes keep most of their difference from the others
        assert np.mean([(shrunk[c] - shrunk[(c + 1) % 12])[10 * c:10 * c + 10].mean() for c in range(12)]) > 1.5
    assert shrunk_class_means(x[y == 0], y[y == 0], [0])[0].tolist() == raw[0].tolist()  # one class: nothing to shrink
    with pytest.raises(ValueError, match="shrink"):
        shrunk_class_means(x, y, [0, 1], "none")


def test_shrunk_class_means_use_the_standard_error_of_a_deviation_from_the_mean_of_means():
    # 3 classes of unequal sizes and spreads; js factors checked against se^2 written out by hand
    rng = np.random.default_rng(4)
    sizes, sds = (4, 9, 16), (0.5, 1.0, 2.0)
    x = np.concatenate([rng.normal(0.3 * c, sd, (n, 50)) for c, (n, sd) in enumerate(zip(sizes, sds, strict=True))])
    y = np.repeat([0, 1, 2], sizes)
    means = [x[y == c].mean(0) for c in range(3)]
    noise = [x[y == c].var(0, ddof=1) / sizes[c] for c in range(3)]
    grand = sum(means) / 3
    shrunk = shrunk_class_means(x, y, [0, 1, 2], "js")
    for c in range(3):
        e = means[c] - grand
        se2 = (2 / 3) ** 2 * noise[c] + sum(noise[j] for j in range(3) if j != c) / 9
        want = grand + np.clip(1.0 - se2 / e**2, 0.0, 1.0) * e
        np.testing.assert_allclose(shrunk[c], want, rtol=1e-10, atol=1e-12)
        assert 0 < np.mean(shrunk[c] == grand) < 1  # some genes shrunk to the mean of means, some kept in part


@pytest.mark.parametrize(("settings", "want"), [({}, ("eb", "blend")),
                                                 (dict(prior_shrink="none", prior_covariance="own"), ("none", "own"))])
def test_the_conditional_fit_gives_its_prior_and_fold_priors_the_configured_rules(atlas, monkeypatch, settings, want):
    from tspg.nn import Classifier
    from tspg.train import _conditional, fit_conditional_generator

    x, y, _ = atlas
    calls = []
    fit = _conditional.fit_conditional_prior

    def spy(*args, **kwargs):
        calls.append((kwargs["shrink"], kwargs["covariance"]))
        return fit(*args, **kwargs)

    monkeypatch.setattr(_conditional, "fit_conditional_prior", spy)
    cfg = GeneratorConfig(epochs=1, prior_components=10, **settings)
    gen, _ = fit_conditional_generator(Classifier(x.shape[1], 4), x, y, [0, 2], x[:8], cfg, progress=False,
                                       y_val=y[:8])
    assert calls == [want] * (1 + cfg.prior_folds)  # the prior and each fold's
    direct = fit(x, y, [0, 2], 4, n_components=10, shrink=want[0], covariance=want[1])
    for name, buf in direct.named_buffers():
        assert torch.equal(buf, dict(gen.prior.named_buffers())[name])


def test_an_untrained_zero_init_conditional_generator_is_its_prior(atlas):
    x, y, _ = atlas
    gen, _ = new_conditional_adversary(x.shape[1], 2, GeneratorConfig(), seed=0)
    gen.prior = fit_conditional_prior(x, y, [1, 3], 4, n_components=10)
    gen.eval()
    xt = torch.as_tensor(x[:16])
    with torch.no_grad():
        for i in range(2):
            g = gen(xt, torch.full((16,), i))
            assert torch.count_nonzero(g) == 0
            adv, _ = perturb(TargetView(gen, i), xt)
            moved = torch.clamp(xt + gen.prior(xt, torch.full((16,), i)), 0, 1)
            torch.testing.assert_close(adv, torch.clamp(moved, torch.clamp(xt, max=0.0), torch.clamp(xt, min=1.0)))


def test_a_step_deals_the_batch_to_several_targets_never_to_a_samples_own_class(atlas):
    x, y, _ = atlas
    from tspg.nn import Classifier

    clf = Classifier(x.shape[1], 4, (16,))
    gen, disc = new_conditional_adversary(x.shape[1], 4, GeneratorConfig(), seed=0)
    plan = ConditionalPlan(clf, gen, disc, x, y, [0, 1, 2, 3], GeneratorConfig(), seed=3, device=torch.device("cpu"))
    seen = set()
    for _ in range(20):
        batch = np.random.default_rng(len(seen)).choice(len(y), 32, replace=False)
        t, groups = plan.assign(y[batch])
        assert not (np.asarray([0, 1, 2, 3])[t] == y[batch]).any()
        assert len(groups) == 32 // GROUP_SIZE
        assert sorted(np.concatenate([g for _, g in groups]).tolist()) == list(range(32))
        seen.update(int(i) for i, _ in groups)
    assert seen == {0, 1, 2, 3}
    # a batch too small for two groups of GROUP_SIZE still gets two targets, so no row keeps its own class
    for seed in range(20):
        batch = np.random.default_rng(seed).choice(len(y), GROUP_SIZE + 4, replace=False)
        t, groups = plan.assign(y[batch])
        assert len(groups) == 2 and not (np.asarray([0, 1, 2, 3])[t] == y[batch]).any()
    again = ConditionalPlan(clf, gen, disc, x, y, [0, 1, 2, 3], GeneratorConfig(), seed=3,
                            device=torch.device("cpu"))
    first = np.random.default_rng(0).choice(len(y), 32, replace=False)
    assert np.array_equal(again.assign(y[first])[0], ConditionalPlan(
        clf, gen, disc, x, y, [0, 1, 2, 3], GeneratorConfig(), seed=3, device=torch.device("cpu")).assign(
        y[first])[0])


def test_settings_the_conditional_generator_lacks_are_refused():
    for change, word in ((dict(td_loss="draw"), "td_loss=draw"), (dict(td_loss="sinkhorn"), "td_loss=sinkhorn"),
                         (dict(disc_real="all"), "disc_real=all"), (dict(w_mean=1.0), "w_mean"),
                         (dict(prior_marginals="zero-inflated"), "prior_marginals=zero-inflated")):
        with pytest.raises(InputError, match=word):
            check_conditional_config(GeneratorConfig(**change))
    check_conditional_config(GeneratorConfig(td_loss="mmd"))
    for shrink in ("none", "eb", "js", "auto"):
        check_conditional_config(GeneratorConfig(prior_shrink=shrink))
    for marginals in ("auto", "none"):  # auto: no marginal maps for the conditional generator
        check_conditional_config(GeneratorConfig(prior_marginals=marginals))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    a = make_atlas(n_classes=4, n_genes=60, samples_per_class=24, n_markers=4, seed=3)
    paths = a.write(tmp_path_factory.mktemp("cond"))
    return paths, load_dataset(paths["data"], paths["labels"])


def _fitted(ds, **cfg):
    m = TSPG(seed=1, progress=False)
    m.generator_config = GeneratorConfig(**{"epochs": 3, "patience": 0, **cfg})
    m.fit_classifier(ds)
    return m.fit_conditional(ds, "all")


def test_g_learns_every_target_without_a_prior(small):
    # with no prior and a zero-initialised G, all that moves a sample is what G learned, for each target at once
    _, ds = small
    m = _fitted(ds, prior="none", epochs=40, patience=0)
    test = m.split.index[m.split == "test"]
    for t in m.classes:
        p = m.perturb(ds.gem.loc[test], t, labels=ds.labels.loc[test])
        assert p.metrics()["perturbation_accuracy"] >= 0.9, t


def test_a_saved_conditional_generator_loads_to_the_same_perturbations(small, tmp_path):
    _, ds = small
    m = _fitted(ds)
    x, labels = ds.gem.iloc[:12], ds.labels.iloc[:12]
    before = {t: m.perturb(x, t).perturbed_scaled.to_numpy() for t in m.classes}
    labelled = {t: m.perturb(x, t, labels=labels).perturbed_scaled.to_numpy() for t in m.classes}
    m.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["conditional"]["targets"] == m.classes
    assert (tmp_path / CONDITIONAL_WEIGHTS).is_file()
    for t in m.classes:
        assert manifest["targets"][t]["generator"] == "conditional"
        assert not (tmp_path / target_dirname(t) / GENERATOR_WEIGHTS).exists()
    loaded = TSPG.load(tmp_path, progress=False)
    for t in m.classes:
        assert isinstance(loaded.generators[t], TargetView)
        np.testing.assert_array_equal(loaded.perturb(x, t).perturbed_scaled.to_numpy(), before[t])
        # the rule it trained with comes back too (each labelled sample by its own class's map)
        assert loaded.generator_summaries[t]["prior_assign"] == "label"
        # and the prior's shrinkage and covariance (auto: eb and blend)
        assert manifest["targets"][t]["training"]["prior_shrink"] == "eb"
        assert manifest["targets"][t]["training"]["prior_covariance"] == "blend"
        np.testing.assert_array_equal(loaded.perturb(x, t, labels=labels).perturbed_scaled.to_numpy(), labelled[t])
    # a conditional run saved before its prior was shrunk has neither entry: it reads as unshrunk with own
    for t in m.classes:
        del manifest["targets"][t]["training"]["prior_shrink"], manifest["targets"][t]["training"]["prior_covariance"]
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    old = TSPG.load(tmp_path, progress=False)
    for t in m.classes:
        assert (old.generator_summaries[t]["prior_shrink"], old.generator_summaries[t]["prior_covariance"]) == (
            "none", "own")
        np.testing.assert_array_equal(old.perturb(x, t).perturbed_scaled.to_numpy(), before[t])
    # same seed, same data: the same weights file
    other = tmp_path / "again"
    _fitted(ds).save(other)
    assert (other / CONDITIONAL_WEIGHTS).read_bytes() == (tmp_path / CONDITIONAL_WEIGHTS).read_bytes()


def test_one_target_retrained_per_target_beside_the_conditional_generator(small, tmp_path):
    _, ds = small
    m = _fitted(ds)
    m.generator_config = GeneratorConfig(epochs=2, patience=0)
    m.fit_generator(ds, "Liver")
    m.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["targets"]["Liver"]["generator"] == "per-target"
    assert (tmp_path / "Liver" / GENERATOR_WEIGHTS).is_file()
    loaded = TSPG.load(tmp_path, progress=False)
    assert not isinstance(loaded.generators["Liver"], TargetView)
    assert isinstance(loaded.generators["Lung"], TargetView)
    x = ds.gem.iloc[:5]
    np.testing.assert_array_equal(loaded.perturb(x, "Liver").perturbed_scaled.to_numpy(),
                                  m.perturb(x, "Liver").perturbed_scaled.to_numpy())


def test_a_damaged_conditional_file_is_one_line(small, tmp_path):
    _, ds = small
    _fitted(ds).save(tmp_path)
    path = tmp_path / CONDITIONAL_WEIGHTS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged"):
        TSPG.load(tmp_path, progress=False)


def test_the_conditional_generator_is_a_per_target_folder_to_every_command(small, tmp_path):
    paths, _ = small
    out = tmp_path / "run"
    r = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "all", "--generator",
             "conditional", "--out", out, "--classifier-epochs", "3", "--epochs", "2", "--no-figures", "--quiet",
             check=False)
    assert r.returncode == 0, r.stderr
    classes = json.loads((out / MANIFEST).read_text())["classes"]
    assert len([line for line in r.stdout.splitlines() if line.startswith("target ")]) == len(classes)
    for c in classes:
        for name in ("metrics.json", "perturbations.tsv", "history.tsv", "evaluation.tsv", "top_genes.tsv"):
            assert (out / target_dirname(c) / name).is_file(), (c, name)
    r = tspg("perturb", out, "--target", "Liver", "--perturb", "all", "--no-figures", "--quiet", check=False)
    assert r.returncode == 0, r.stderr
    assert "perturbation accuracy" in r.stdout
    r = tspg("export", out, "--target", "Lung", "--h5ad", tmp_path / "lung.h5ad", "--quiet", check=False)
    assert r.returncode == 0 and (tmp_path / "lung.h5ad").is_file(), r.stderr
    # a setting it lacks is one line, before anything is trained
    r = tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "all", "--generator",
             "conditional", "--td-loss", "draw", "--out", tmp_path / "bad", check=False)
    assert r.returncode == 2 and "--td-loss draw" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_conditional_generator_shapes():
    g = ConditionalGenerator(7, 3, zero_init=False)
    out = g(torch.rand(5, 7), torch.tensor([0, 1, 2, 1, 0]))
    assert out.shape == (5, 7) and out.abs().max() <= 1


def test_a_small_target_is_moved_by_the_whole_prior_and_the_others_stay_cross_fitted(atlas, monkeypatch, caplog):
    from tspg.nn import Classifier
    from tspg.train import _conditional, fit_conditional_generator

    x, y, _ = atlas
    keep = np.ones(len(y), bool)
    keep[np.flatnonzero(y == 3)[3:]] = False  # class 3: 3 training samples, fewer than the 5 folds
    x, y = x[keep], y[keep]
    plans = []
    train = _conditional._train
    monkeypatch.setattr(_conditional, "_train", lambda plan, *a, **k: plans.append(plan) or train(plan, *a, **k))
    cfg = GeneratorConfig(epochs=1, prior_components=10)
    with caplog.at_level("INFO", logger="tspg.train._conditional"):
        fit_conditional_generator(Classifier(x.shape[1], 4), x, y, [0, 3], x[:8], cfg, progress=False, y_val=y[:8],
                                  class_names=["A", "B", "C", "D"])
    assert "not cross-fitted (their moves are the whole training part's prior): D" in caplog.text
    plan = plans[0]
    # one small target used to switch cross-fitting off for every target
    assert plan.folds is not None and plan.folds[3].tolist() == [False, True]
    idx = np.flatnonzero((y == 1) | (y == 2))[::2]  # rows of neither target's class
    xb = torch.as_tensor(x[idx])
    classes = torch.as_tensor(y[idx])
    whole = {}
    for i in (0, 1):
        t = torch.full((len(idx),), i)
        with torch.no_grad():
            whole[i] = plan.generator.prior(xb, t, classes)
            got = plan.displacement(xb, t, t.numpy(), idx, classes)
        share = (got * whole[i]).sum(1) / (whole[i] * whole[i]).sum(1)
        if i == 1:  # the small target: each row's whole move, times its share in [prior_share_low, 1]
            torch.testing.assert_close(got, whole[i] * share[:, None], atol=1e-5, rtol=1e-4)
            assert share.min() >= cfg.prior_share_low - 1e-4 and share.max() <= 1 + 1e-4
        else:  # the cross-fitted one: the fold priors' moves differ from the whole prior's
            assert (got - whole[i] * share[:, None]).abs().max() > 1e-3


def test_the_fits_put_the_classifiers_gradient_flags_back_as_they_were(atlas):
    from tspg.nn import Classifier
    from tspg.train import fit_conditional_generator, fit_generator

    x, y, _ = atlas
    clf = Classifier(x.shape[1], 4, (16,))
    params = list(clf.parameters())
    for i, p in enumerate(params):
        p.requires_grad_(i % 2 == 0)  # some frozen by the caller, some not
    before = [p.requires_grad for p in params]
    cfg = GeneratorConfig(epochs=1, prior_components=10)
    fit_generator(clf, x, x[y == 0], 0, x[:8], cfg, progress=False, y_train=y, y_val=y[:8])
    assert [p.requires_grad for p in params] == before
    fit_conditional_generator(clf, x, y, [0, 2], x[:8], cfg, progress=False, y_val=y[:8])
    assert [p.requires_grad for p in params] == before
