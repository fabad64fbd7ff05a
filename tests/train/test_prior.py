"""The generator's transport prior: the closed-form map it starts from, its use in G, its checkpoint and its file."""

import json

import numpy as np
import pytest
import torch

from tspg import TSPG, tl
from tspg.data import Dataset, InputError, make_atlas, make_paired_atlas
from tspg.nn import Generator, TransportPrior, perturb
from tspg.train import (
    ClassifierConfig,
    CrossFittedTransport,
    GeneratorConfig,
    adaptive_shrink_factors,
    adaptive_shrinkage,
    blend_weight,
    class_gaussians,
    config_from_dict,
    config_to_dict,
    fit_transport_prior,
    out_of_fold_transport,
    shrink_factors,
)
from tspg.train._prior import class_variances, fold_of_rows, gaussian


def test_mean_prior_moves_every_sample_of_a_class_by_its_mean_shift(atlas):
    x, y, names = atlas
    prior = fit_transport_prior(x, y, target=2, n_classes=4, kind="mean", n_components=10)
    shifts = tl.class_mean_shift(x, y, [0, 1, 2, 3], 2)
    with torch.no_grad():
        moved = prior(torch.as_tensor(x), classes=torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(moved, shifts[y], atol=2e-5)
    assert np.abs(moved[y == 2]).max() == 0.0  # the target's own samples do not move


def test_ot_prior_lands_each_class_mean_on_the_target_mean_and_matches_the_baseline(atlas):
    x, y, names = atlas
    prior = fit_transport_prior(x, y, target=0, n_classes=4, kind="ot", n_components=10)
    with torch.no_grad():
        moved = x + prior(torch.as_tensor(x), classes=torch.as_tensor(y)).numpy()
    for c in (1, 2, 3):
        np.testing.assert_allclose(moved[y == c].mean(0), x[y == 0].mean(0), atol=1e-4)
    assert not np.allclose(moved[y == 1] - x[y == 1], (moved[y == 1] - x[y == 1]).mean(0), atol=1e-3)  # not one shift
    labels = np.asarray(names, dtype=object)[y]
    baseline = tl.perturb_baseline("optimal_transport", x, labels, x, labels, names[0])
    default = fit_transport_prior(x, y, target=0, n_classes=4)  # the baseline's 50 components
    with torch.no_grad():
        moved = x + default(torch.as_tensor(x), classes=torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(baseline, np.clip(moved, 0.0, 1.0), atol=1e-5)


def test_prior_assigns_the_nearest_class_centroid(atlas):
    x, y, _ = atlas
    prior = fit_transport_prior(x, y, target=1, n_classes=4, n_components=10)
    assert (prior.assign(torch.as_tensor(x)).numpy() == y).mean() == 1.0
    with torch.no_grad():  # without given classes each row takes its assigned class's map
        np.testing.assert_allclose(prior(torch.as_tensor(x)).numpy(),
                                   prior(torch.as_tensor(x), classes=torch.as_tensor(y)).numpy(), atol=1e-6)


def test_a_class_without_training_samples_is_never_assigned(atlas):
    x, y, _ = atlas
    keep = y != 3
    prior = fit_transport_prior(x[keep], y[keep], target=0, n_classes=4, n_components=10)
    assert 3 not in prior.assign(torch.as_tensor(x)).tolist()


def test_untrained_generator_with_a_prior_is_the_prior(atlas):
    x, y, _ = atlas
    prior = fit_transport_prior(x, y, target=0, n_classes=4, n_components=10)
    gen = Generator(x.shape[1], zero_init=True, prior=prior).eval()
    xt = torch.as_tensor(x)
    with torch.no_grad():
        x_adv, g = perturb(gen, xt)
        expected = torch.clamp(xt + prior(xt), torch.clamp(xt, max=0.0), torch.clamp(xt, min=1.0))
    assert torch.equal(g, torch.zeros_like(g))
    assert torch.allclose(x_adv, expected)


def test_folds_spread_every_class_evenly_and_depend_on_the_seed():
    y = np.repeat([0, 1, 2], [10, 7, 3])
    fold = fold_of_rows(y, 5, seed=0)
    for c, n in ((0, 10), (1, 7), (2, 3)):
        counts = np.bincount(fold[y == c], minlength=5)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert np.array_equal(fold, fold_of_rows(y, 5, seed=0))
    assert not np.array_equal(fold, fold_of_rows(y, 5, seed=1))


def _small(seed=3, per_class=12):
    a = make_atlas(n_classes=4, n_genes=150, samples_per_class=per_class, n_markers=10, seed=seed)
    x = a.gem.to_numpy(np.float32)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    return x, np.searchsorted(sorted(a.labels.unique()), a.labels.to_numpy())


def test_out_of_fold_moves_come_from_a_prior_fitted_without_their_fold():
    x, y = _small()
    moves = out_of_fold_transport(x, y, target=0, n_classes=4, folds=4, seed=5)
    fold = fold_of_rows(y, 4, seed=5)
    rest = fold != 2
    other = fit_transport_prior(x[rest], y[rest], target=0, n_classes=4, seed=5)
    with torch.no_grad():
        np.testing.assert_allclose(moves[fold == 2], other(torch.as_tensor(x[fold == 2])).numpy(), atol=1e-5)
        whole = fit_transport_prior(x, y, target=0, n_classes=4, seed=5)(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(out_of_fold_transport(x, y, target=0, n_classes=4, folds=1, seed=5), whole)
    # the caller's own prior of the whole part (a generator's) is used as it is, not fitted again
    prior = fit_transport_prior(x, y, target=0, n_classes=4, seed=5)
    np.testing.assert_array_equal(out_of_fold_transport(x, y, 0, 4, folds=4, seed=5, whole=prior), moves)
    with torch.no_grad():
        prior.maps.zero_(), prior.shifts.add_(1.0)  # a different map: the rows it moves come out differently
    assert not np.array_equal(out_of_fold_transport(x, y, 0, 4, folds=1, seed=5, whole=prior), whole)
    assert np.abs(moves[y == 0]).max() == 0.0  # the target's own samples never move
    # a target with fewer training samples than folds: the whole part's prior for every row
    few = np.flatnonzero(y == 0)[3:]
    keep = np.setdiff1d(np.arange(len(y)), few)
    np.testing.assert_allclose(out_of_fold_transport(x[keep], y[keep], 0, 4, folds=4, seed=5),
                               fit_transport_prior(x[keep], y[keep], 0, 4, seed=5)(torch.as_tensor(x[keep]))
                               .detach().numpy(), atol=1e-6)


def test_cross_fitted_moves_a_batch_at_a_time_are_the_whole_matrix_rows():
    # training keeps the fold priors, not the rows x genes matrix, and moves each mini-batch on the fly
    x, y = _small()
    y[np.flatnonzero(y == 3)[1:]] = 2  # class 3 has one sample: no prior without its fold, the whole one moves it
    cross = CrossFittedTransport.fit(x, y, target=0, n_classes=4, folds=4, seed=5)
    assert len(cross.priors) == 5 and cross.group[y == 3].tolist() == [4]
    whole = cross.displacements(x)
    np.testing.assert_array_equal(whole, out_of_fold_transport(x, y, 0, 4, folds=4, seed=5))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    order, spans = cross.batches(perm, 7)
    assert len(spans) == len(y) // 7
    assert sorted(order.tolist()) == list(range(len(y)))
    for k, batch_spans in enumerate(spans):
        rows = order[k * 7:(k + 1) * 7]
        assert set(rows.tolist()) == set(perm[k * 7:(k + 1) * 7].tolist())  # the same rows in each batch
        assert [b for _, _, b in batch_spans][-1] == 7
        assert all(set(cross.group[rows[a:b].numpy()]) == {j} for j, a, b in batch_spans)
        with torch.no_grad():
            moved = cross.move(torch.as_tensor(x[rows.numpy()]), batch_spans).numpy()
        np.testing.assert_allclose(moved, whole[rows.numpy()], atol=1e-6)
    # fewer target samples than folds: one prior, the whole part's, for every row
    keep = np.setdiff1d(np.arange(len(y)), np.flatnonzero(y == 0)[3:])
    single = CrossFittedTransport.fit(x[keep], y[keep], 0, 4, folds=4, seed=5)
    assert len(single.priors) == 1 and not single.group.any()


def test_cross_fitted_training_moves_land_as_far_from_the_target_as_a_new_samples():
    # with fewer training samples than components the prior fits its own training part: its moved training
    # samples sit much closer to the target's mean than moved new samples do; cross-fitted moves do not
    x, y = _small(seed=4, per_class=24)
    train = np.arange(len(y)) % 2 == 0
    xt, yt, xh, yh = x[train], y[train], x[~train], y[~train]
    mu_t = xt[yt == 0].mean(0)
    prior = fit_transport_prior(xt, yt, target=0, n_classes=4)
    with torch.no_grad():
        in_sample, new = prior(torch.as_tensor(xt)).numpy(), prior(torch.as_tensor(xh)).numpy()
    crossed = out_of_fold_transport(xt, yt, target=0, n_classes=4, folds=5)

    def spread(moved, labels):  # mean squared distance of the moved non-target samples to the target mean
        return np.mean(((moved[labels != 0] - mu_t) ** 2).sum(1))

    # measured (seeds 4-6): in-sample 1.96, 1.95, 2.13; new samples 4.85, 4.38, 4.96; cross-fitted 5.10, 4.52, 4.82
    s_in, s_new, s_cross = spread(xt + in_sample, yt), spread(xh + new, yh), spread(xt + crossed, yt)
    assert s_in < 0.6 * s_new
    assert 0.8 < s_cross / s_new < 1.25


def test_g_trains_on_moves_the_prior_leaves_short_only_with_cross_fitting():
    a = make_atlas(n_classes=4, n_genes=150, samples_per_class=12, n_markers=10, seed=3)
    ds = Dataset(a.gem, a.labels.astype(str))
    model = TSPG(ClassifierConfig(epochs=10), GeneratorConfig(epochs=1), seed=0, progress=False, device="cpu")
    model.fit_classifier(ds)
    target = sorted(a.labels.unique())[0]
    adv = {}
    for name, kw in (("in_sample", {"prior_folds": 1, "prior_share_low": 1.0}), ("default", {}),
                     ("in_sample_partial", {"prior_folds": 1})):
        # each class's own covariance: with fewer samples than components it fits its training samples exactly
        model.generator_config = GeneratorConfig(epochs=1, prior_covariance="own", **kw)
        model.fit_generator(ds, target)
        adv[name] = model.generator_histories[target][1]["adv"]
    # in-sample every training sample is already called the target with margin kappa: L_adv gives G nothing
    # (measured -5.000); cross-fitted, partly applied moves leave some short, and L_adv acts on them (-4.859)
    assert adv["in_sample"] == pytest.approx(-5.0, abs=1e-6)
    assert adv["default"] > -4.95
    # the random share applies with the whole part's prior too (prior_folds 1 used to ignore it)
    assert adv["in_sample_partial"] > -4.95


def _moved_mean(prior, x, y, c):
    with torch.no_grad():
        return prior(torch.as_tensor(x[y == c]), classes=torch.as_tensor(y[y == c])).numpy().mean(0)


@pytest.mark.parametrize("kind", ["mean", "ot"])
@pytest.mark.parametrize("shrink", ["js", "eb"])
def test_shrunk_prior_moves_each_class_mean_by_its_shrunk_mean_shift(atlas, kind, shrink):
    x, y, _ = atlas
    prior = fit_transport_prior(x, y, target=0, n_classes=4, kind=kind, n_components=10, shrink=shrink)
    var = class_variances(x, y, [0, 1, 2, 3])
    rule = shrink_factors if shrink == "js" else adaptive_shrink_factors
    for c in (1, 2, 3):
        d = x[y == 0].mean(0, dtype=np.float64) - x[y == c].mean(0, dtype=np.float64)
        f = rule(d, var[0], int((y == 0).sum()), var[c], int((y == c).sum()))
        assert 0.1 < (f < 0.5).mean() < 0.9 and (f > 0.95).any()  # some genes kept, many shrunk
        np.testing.assert_allclose(_moved_mean(prior, x, y, c), f * d, atol=2e-4)
    with torch.no_grad():  # the target's own samples still do not move
        assert np.abs(prior(torch.as_tensor(x[y == 0]), classes=torch.as_tensor(y[y == 0])).numpy()).max() == 0.0
    plain = fit_transport_prior(x, y, target=0, n_classes=4, kind=kind, n_components=10)
    with torch.no_grad():
        np.testing.assert_array_equal(plain(torch.as_tensor(x)).numpy(), fit_transport_prior(
            x, y, target=0, n_classes=4, kind=kind, n_components=10, shrink="none")(torch.as_tensor(x)).numpy())


def test_shrunk_mean_shift_is_closer_to_the_true_shift_when_most_genes_do_not_change():
    # 2 classes x 400 genes, 12 samples each; 20 genes differ by 2 noise SDs, the other 380 not at all
    rng = np.random.default_rng(0)
    true = np.zeros(400)
    true[:20] = 2.0
    x = np.concatenate([rng.normal(0, 1, (12, 400)), rng.normal(true, 1, (12, 400))]).astype(np.float32)
    y = np.repeat([0, 1], 12)
    errors = {}
    for shrink in ("none", "js", "eb"):
        prior = fit_transport_prior(x, y, target=1, n_classes=2, kind="mean", n_components=5, shrink=shrink)
        errors[shrink] = float(np.sum((_moved_mean(prior, x, y, 0) - true) ** 2))
    assert errors["js"] < 0.5 * errors["none"]  # measured: 26.9 against 68.7
    # the prior learnt from all 400 genes (most do not differ) removes most of the rest (measured: 8.3)
    assert errors["eb"] < 0.5 * errors["js"]
    for shrink in ("js", "eb"):
        kept = _moved_mean(fit_transport_prior(x, y, 1, 2, kind="mean", n_components=5, shrink=shrink), x, y, 0)[:20]
        assert kept.mean() > 1.8  # the real differences keep their size (measured: js 2.01, eb 1.94; plain 2.08)


def test_adaptive_shrinkage_learns_how_many_effects_are_null():
    rng = np.random.default_rng(1)
    se = rng.uniform(0.5, 2.0, 2000)
    beta = np.zeros(2000)
    beta[:100] = rng.choice([-1, 1], 100) * 8.0 * se[:100]
    b = beta + rng.normal(0, se)
    post = adaptive_shrinkage(b, se)
    assert np.all(np.abs(post) <= np.abs(b) + 1e-12) and np.all(np.sign(post) * np.sign(b) >= 0)
    assert np.abs(post[100:]).mean() < 0.1 * np.abs(b[100:]).mean()  # nulls: nearly 0
    assert np.median(post[:100] / b[:100]) > 0.9  # 8 standard errors away: nearly kept
    assert np.sum((post - beta) ** 2) < 0.2 * np.sum((b - beta) ** 2)
    # with as many effects as nulls the same 2-SE estimate is shrunk less: the prior is learnt from the data
    dense = np.where(np.arange(2000) < 1000, 8.0 * se, 0.0) + rng.normal(0, se)
    probe = np.r_[2.0, np.zeros(1999)] * se
    assert adaptive_shrinkage(np.r_[probe[0], dense[1:]], se)[0] > adaptive_shrinkage(np.r_[probe[0], b[1:]], se)[0]


def test_adaptive_shrinkage_edge_cases():
    np.testing.assert_array_equal(adaptive_shrinkage(np.zeros(5), np.ones(5)), np.zeros(5))
    # no standard error: the estimate is kept (nothing to shrink it by)
    np.testing.assert_array_equal(adaptive_shrinkage(np.array([1.0, -2.0]), np.zeros(2)), [1.0, -2.0])
    out = adaptive_shrinkage(np.array([3.0, 0.1, 7.0]), np.array([0.0, 1.0, 1.0]))
    assert out[0] == 3.0 and abs(out[1]) < 0.1 and 0 < out[2] < 7.0
    # a gene constant in both classes keeps a real difference and has none otherwise
    f = adaptive_shrink_factors(np.array([0.5, 0.0, 0.3]), np.array([0.0, 0.0, 0.01]), 5, np.array([0.0, 0.0, 0.01]), 5)
    assert f[0] == 1.0 and f[1] == 0.0 and 0.0 <= f[2] <= 1.0


def test_a_class_of_one_sample_gets_the_pooled_variance():
    x = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 3.0], [1.0, 5.0], [9.0, 9.0]])
    var = class_variances(x, np.array([0, 0, 1, 1, 2]), [0, 1, 2])
    np.testing.assert_allclose(var[0], [2.0, 0.0])
    np.testing.assert_allclose(var[2], (var[0] + var[1]) / 2)
    with pytest.raises(ValueError, match="shrink"):
        fit_transport_prior(x, np.array([0, 0, 1, 1, 2]), 1, 3, shrink="hard")


def test_prior_share_and_folds_are_checked():
    with pytest.raises(InputError, match="prior_shrink"):
        GeneratorConfig(prior_shrink="yes")
    with pytest.raises(InputError, match="prior_share_low"):
        GeneratorConfig(prior_share_low=1.5)
    with pytest.raises(InputError, match="prior_folds"):
        GeneratorConfig(prior_folds=0)


@pytest.fixture(scope="module")
def paired():
    a = make_paired_atlas(n_individuals=60, n_genes=300, seed=2)
    ds = Dataset(a.gem, a.labels.astype(str))
    model = TSPG(ClassifierConfig(epochs=10), GeneratorConfig(epochs=6), seed=0, progress=False, device="cpu")
    model.fit_classifier(ds)
    return model, ds, a.true_delta


def _specificity(model, ds, true_delta):
    test = model.split.index[(model.split == "test") & (ds.labels.reindex(model.split.index) == "Normal")]
    p = model.perturb(ds.gem.loc[test], "Tumour")
    delta = true_delta.loc[test].to_numpy(np.float64) / model.scaler.data_range.astype(np.float64)
    inp = tl.MetricInput(x_adv=p.x_adv_scaled, x=p.x_scaled, true_delta=delta)
    return tl.METRICS["specificity"](inp)


@pytest.mark.slow
def test_ot_prior_gives_each_sample_its_own_transition(paired):
    model, ds, true_delta = paired
    model.generator_config = GeneratorConfig(epochs=6, prior="ot")
    model.fit_generator(ds, "Tumour")
    with_prior = _specificity(model, ds, true_delta)
    model.generator_config = GeneratorConfig(epochs=6, prior="none")
    model.fit_generator(ds, "Tumour")
    without = _specificity(model, ds, true_delta)
    # measured (6 epochs): 0.45 with the Gaussian OT prior, below 0 without (a class-mean shift scores ~0)
    assert with_prior > 0.3 > without


def test_checkpoint_keeps_the_prior_alone_when_training_only_makes_it_worse(paired):
    model, ds, _ = paired
    # a learning rate this large saturates G's tanh at once: every trained epoch is far from the target
    model.generator_config = GeneratorConfig(epochs=1, lr_generator=5.0, prior="ot")
    model.fit_generator(ds, "Tumour")
    hist = model.generator_histories["Tumour"]
    assert [r["epoch"] for r in hist] == [0, 1] and np.isnan(hist[0]["g_loss"])
    assert model.generator_summaries["Tumour"]["best_epoch"] == 0
    gen = model.generators["Tumour"]
    x = torch.as_tensor(model.scale(ds.gem.iloc[:5]))
    with torch.no_grad():
        assert torch.equal(gen(gen.transport(x)), torch.zeros_like(x))  # G's own part is its zero start


def test_prior_round_trips_through_the_run_folder_and_old_folders_load_without_one(paired, tmp_path):
    model, ds, _ = paired
    model.generator_config = GeneratorConfig(epochs=1, prior="mean", prior_components=8)
    model.fit_generator(ds, "Tumour")
    before = model.perturb(ds.gem, "Tumour").x_adv_scaled
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["targets"]["Tumour"]["training"]["prior_components"] == 8
    assert manifest["targets"]["Tumour"]["config"]["prior"] == "mean"
    loaded = TSPG.load(tmp_path / "run", progress=False)
    assert isinstance(loaded.generators["Tumour"].prior, TransportPrior)
    np.testing.assert_array_equal(loaded.perturb(ds.gem, "Tumour").x_adv_scaled, before)

    model.generator_config = GeneratorConfig(epochs=1, prior="none")
    model.fit_generator(ds, "Tumour")
    model.save(tmp_path / "old")
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["targets"]["Tumour"]["config"]["prior"]  # as written before the prior existed
    path.write_text(json.dumps(manifest))
    old = TSPG.load(tmp_path / "old", progress=False)
    assert old.generators["Tumour"].prior is None
    assert old.generator_configs["Tumour"].prior == "none"


def _em_posterior(b, iters=20000):
    """The textbook EM of the same mixture, run long: the reference the convex solver must reach."""
    from tspg.train._prior import GRID_RATIO, NULL_WEIGHT

    lo = 0.1
    hi = 2.0 * np.sqrt(max(float(np.max(b * b - 1.0)), lo * lo))
    steps = max(1, int(np.ceil(np.log(hi / lo) / np.log(GRID_RATIO))))
    grid2 = np.r_[0.0, lo * GRID_RATIO ** np.arange(steps + 1)] ** 2
    var = grid2[None, :] + 1.0
    lik = np.exp(-0.5 * (np.log(var) + b[:, None] ** 2 / var))
    pen = np.r_[NULL_WEIGHT - 1.0, np.zeros(len(grid2) - 1)]
    pi = np.full(len(grid2), 1.0 / len(grid2))
    for _ in range(iters):
        pi = pi * (lik.T @ (1.0 / (lik @ pi))) + pen
        pi /= pi.sum()
    w = lik * pi
    return (w / w.sum(1, keepdims=True) * (grid2 / var)).sum(1) * b


def test_adaptive_shrinkage_reaches_the_optimum_that_long_em_finds():
    rng = np.random.default_rng(3)
    for n, wide in ((300, 5.0), (3000, 6.0)):
        b = np.r_[rng.normal(0, 1, n - n // 30), rng.normal(0, wide, n // 30)]
        np.testing.assert_allclose(adaptive_shrinkage(b, np.ones(n)), _em_posterior(b), atol=2e-3)


def _shared_and_own_covariance(seed=0, k=6, per_class=10, shared_classes=6, big=200):
    """Classes of one covariance with few samples each, then one of many samples with its own covariance."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(k, k))
    z = [rng.normal(size=(per_class, k)) @ shared + 3.0 * c for c in range(shared_classes)]
    z.append(rng.normal(size=(big, k)) * np.r_[6.0, 6.0, np.full(k - 2, 0.3)] - 3.0)  # its own axes and spread
    y = np.repeat(np.arange(shared_classes + 1), [per_class] * shared_classes + [big])
    return np.concatenate(z), y


def _weights(z, y):
    resid = {c: z[y == c] - z[y == c].mean(0) for c in np.unique(y)}
    return {c: blend_weight(z[y == c], np.concatenate([r for k, r in resid.items() if k != c]), seed=int(c))
            for c in resid}


def test_blend_weight_pools_classes_that_share_a_covariance_and_not_one_that_differs():
    z, y = _shared_and_own_covariance(big=0)
    w = _weights(z[y < 6], y[y < 6])
    # 10 samples in 6 dimensions: the pooled covariance of 6 such classes predicts a class's new samples better
    # than the class's own estimate for most classes (weights measured over 5 such data sets: 0.83 to 1 on average)
    assert np.mean(list(w.values())) >= 0.75 and sum(v >= 0.5 for v in w.values()) >= 5, w
    z, y = _shared_and_own_covariance(seed=1, per_class=20)
    assert _weights(z, y)[6] == 0.0  # the class of 200 with its own covariance keeps it
    assert blend_weight(z[:3], z[3:]) == 1.0  # too few rows to cross-validate: the pooled covariance
    assert blend_weight(z[:12], z[12:], seed=5) == blend_weight(z[:12], z[12:], seed=5)


def test_class_gaussians_blend_own_and_pooled_covariances_by_their_weights():
    from sklearn.covariance import LedoitWolf

    z, y = _shared_and_own_covariance(seed=1, per_class=20, shared_classes=3)
    z, y = np.concatenate([z, [[9.0] * 6]]), np.r_[y, 4]  # and a class of one sample
    own = class_gaussians(z, y, "own")
    blend = class_gaussians(z, y, "blend", seed=3)
    assert sorted(blend) == [0, 1, 2, 3, 4] and all(own[c][2] == 0.0 for c in own)
    resid = np.concatenate([z[y == c] - z[y == c].mean(0) for c in range(4)])  # the one-sample class has none
    pooled = LedoitWolf(assume_centered=True).fit(resid).covariance_
    for c, (mean, cov, w) in blend.items():
        np.testing.assert_allclose(mean, z[y == c].mean(0))
        own_cov = LedoitWolf().fit(z[y == c]).covariance_ if c != 4 else np.zeros((6, 6))
        want = w * pooled + (1 - w) * own_cov
        np.testing.assert_allclose(cov, want + 1e-6 * np.trace(want) / 6 * np.eye(6), rtol=1e-9, atol=1e-12)
    assert blend[4][2] == 1.0 and blend[3][2] == 0.0
    np.testing.assert_allclose(own[0][1], gaussian(z[y == 0])[1])
    with pytest.raises(ValueError, match="covariance"):
        class_gaussians(z, y, "pooled")


def test_blended_prior_is_the_mean_shift_where_classes_share_a_covariance(atlas):
    x, y, _ = atlas  # make_atlas: every class has the same noise; 30 samples per class in 10 components
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    mean = fit_transport_prior(x, y, target=0, n_classes=4, kind="mean", n_components=10)
    with torch.no_grad():
        shift = mean(xt, classes=yt).numpy()
        gaps = {cov: np.abs(fit_transport_prior(x, y, target=0, n_classes=4, n_components=10, covariance=cov)(
            xt, classes=yt).numpy() - shift)[y != 0].mean() for cov in ("own", "blend")}
    # the own covariances' map moves each sample by the noise of two 30-sample estimates on top of the shift
    assert gaps["blend"] < 0.25 * gaps["own"], gaps


def test_blended_prior_keeps_each_samples_own_transition_where_the_target_covariance_differs():
    a = make_paired_atlas(n_individuals=80, n_genes=300, seed=4)
    names = sorted(a.labels.unique())
    x = a.gem.to_numpy(np.float32)
    lo, span = x.min(0), x.max(0) - x.min(0)
    x = (x - lo) / span
    y = np.searchsorted(names, a.labels.to_numpy())
    normal = y == names.index("Normal")
    truth = a.true_delta.to_numpy(np.float64)[normal] / span
    truth_beyond = truth - truth.mean(0)

    def specificity(**kw):
        prior = fit_transport_prior(x, y, target=names.index("Tumour"), n_classes=2, n_components=20, **kw)
        with torch.no_grad():
            moved = prior(torch.as_tensor(x[normal]), classes=torch.as_tensor(y[normal])).numpy()
        beyond = moved - moved.mean(0)
        return 1.0 - ((beyond - truth_beyond) ** 2).sum() / (truth_beyond ** 2).sum()

    own, blend, mean = specificity(covariance="own"), specificity(covariance="blend"), specificity(kind="mean")
    # the Tumour class amplifies programs (its own covariance): the blend keeps the OT map's per-sample moves
    assert blend > 0.3 and abs(blend - own) < 0.1 and mean < 0.05, (own, blend, mean)


def test_prior_covariance_is_checked_and_old_configs_read_as_own():
    with pytest.raises(InputError, match="prior_covariance"):
        GeneratorConfig(prior_covariance="pooled")
    assert GeneratorConfig().prior_covariance == "auto"
    assert config_from_dict(GeneratorConfig, {"epochs": 3}).prior_covariance == "own"
    assert config_from_dict(GeneratorConfig, config_to_dict(GeneratorConfig())).prior_covariance == "auto"


def test_ledoit_wolf_from_sums_is_scikit_learns_and_the_sums_add_over_rows():
    from sklearn.covariance import LedoitWolf

    from tspg.train._prior import _ledoit_wolf_moments, _moments

    rng = np.random.default_rng(3)
    for n, p in ((40, 6), (7, 12), (300, 50)):
        r = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
        want = LedoitWolf(assume_centered=True).fit(r).covariance_
        np.testing.assert_allclose(_ledoit_wolf_moments(*_moments(r)), want, rtol=1e-10, atol=1e-12)
        a, b = _moments(r[: n // 3]), _moments(r[n // 3:])
        np.testing.assert_allclose(_ledoit_wolf_moments(a[0] + b[0], a[1] + b[1], a[2] + b[2]), want, rtol=1e-10,
                                   atol=1e-12)
    assert not _ledoit_wolf_moments(*_moments(r[:1])).any()


@pytest.mark.parametrize("marginals", ["none", "zero-inflated"])
def test_row_moves_set_up_once_are_the_batch_moves_of_each_rows_prior(marginals, monkeypatch):
    # training keeps each row's coordinates in its prior's PCA space and moves a batch back to genes from them
    from tspg.train import _prior
    from tspg.train._prior import RowMoves

    x, y = _small(per_class=14)
    x[:, :40] = np.where(np.random.default_rng(0).random((len(x), 40)) < 0.4, 0.0, x[:, :40])  # dropouts
    y[np.flatnonzero(y == 3)[1:]] = 2  # class 3 has one sample: the whole prior moves it
    cross = CrossFittedTransport.fit(x, y, target=0, n_classes=4, folds=4, seed=5, shrink="eb",
                                     covariance="blend", marginals=marginals)
    widths = {int(p.components.shape[0]) for p in cross.priors}
    assert len(widths) > 1  # the fold priors' PCAs have fewer components (fewer samples) than the whole part's
    assert (cross.priors[-1].marginal_genes is not None) == (marginals != "none")
    xt = torch.as_tensor(x)
    known = torch.as_tensor(y)
    relabelled = torch.arange(2, len(y), 5)
    known[relabelled] = torch.where(known[relabelled] == 1, 2, 1)  # moved by the map of the class given
    known[::5] = -1  # rows without a known class take their prior's nearest centroid
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    order, spans = cross.batches(perm, 9)
    for classes in (None, known):
        moves = RowMoves(cross, xt, classes)
        for k, batch_spans in enumerate(spans):
            rows = order[k * 9:(k + 1) * 9]
            with torch.no_grad():
                want = cross.move(xt[rows], batch_spans, None if classes is None else classes[rows])
            torch.testing.assert_close(moves.move(xt[rows], rows, batch_spans), want, atol=1e-6, rtol=0)
    # the class given chooses the map (else the nearest centroid), so the check above tells the two apart
    given, nearest = RowMoves(cross, xt, known).classes, RowMoves(cross, xt).classes
    assert torch.equal(given[relabelled], known[relabelled]) and torch.equal(given[::5], nearest[::5])
    assert not torch.equal(given[relabelled], nearest[relabelled])
    # set up a few rows at a time (the bound on memory at many genes): the same coordinates
    whole = RowMoves(cross, xt, known)
    monkeypatch.setattr(_prior, "ROW_MOVES_CHUNK", 3 * x.shape[1])
    few = RowMoves(cross, xt, known)
    assert torch.equal(few.classes, whole.classes)
    torch.testing.assert_close(few.dz, whole.dz, atol=1e-6, rtol=0)


def test_training_steps_get_each_rows_move_by_its_own_fold_prior():
    # what _train hands the step: each batch row moved by the prior fitted without its fold (by its label's map)
    from tspg.train import _adversarial
    from tspg.train._prior import RowMoves

    a = make_atlas(n_classes=4, n_genes=150, samples_per_class=14, n_markers=10, seed=3)
    ds = Dataset(a.gem, a.labels.astype(str))
    model = TSPG(ClassifierConfig(epochs=10), seed=0, progress=False, device="cpu")
    model.fit_classifier(ds)
    target = sorted(a.labels.unique())[0]
    built, seen = [], []
    init, step = RowMoves.__init__, _adversarial.AdversarialPlan.step

    def spy_init(self, cross, x_train, classes=None):
        built.append((cross, x_train, classes))
        init(self, cross, x_train, classes)

    def spy_step(self, x, calls=None, displacement=None):
        seen.append((x.clone(), displacement.clone()))
        return step(self, x, calls, displacement)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RowMoves, "__init__", spy_init)
        mp.setattr(_adversarial.AdversarialPlan, "step", spy_step)
        model.generator_config = GeneratorConfig(epochs=1, prior_share_low=1.0)  # the whole move, no random share
        model.fit_generator(ds, target)
    (cross, xt, classes), = built
    assert len(cross.priors) == 6 and classes is not None and len(seen) >= 2
    groups = set()
    for x, disp in seen:
        rows = [int(torch.nonzero((xt == r).all(1))[0]) for r in x]  # each batch row's index in the training part
        assert len(set(rows)) == len(rows)
        groups.update(int(cross.group[r]) for r in rows)
        with torch.no_grad():
            want = torch.cat([cross.priors[cross.group[r]](xt[r:r + 1], classes[r:r + 1]) for r in rows])
        torch.testing.assert_close(disp, want, atol=1e-5, rtol=0)
    assert len(groups) >= 5  # rows of every fold prior (and of the whole part's, for lone classes) were moved
