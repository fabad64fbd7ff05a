"""The realism defaults at work: distribution terms, target-only discriminator, realism checkpoints, L_ind."""

import numpy as np
import pytest
import torch

from tspg import TSPG
from tspg._options import PAPER_LOSS
from tspg.data import Dataset, make_atlas
from tspg.tl._metrics import energy_distance
from tspg.train import AdversarialPlan, ClassifierConfig, GeneratorConfig, checkpoint_score, kept_row, new_adversary
from tspg.train._losses import individual_loss

OLD = {"td_loss": "draw", "disc_real": "all", "checkpoint": "margin", "zero_init": False, "w_ind": 0.0,
       "prior": "none"}


@pytest.fixture(scope="module")
def fitted():
    atlas = make_atlas(n_classes=4, n_genes=200, samples_per_class=50, seed=3)
    ds = Dataset(atlas.gem, atlas.labels)
    model = TSPG(ClassifierConfig(epochs=15), GeneratorConfig(epochs=20), seed=0, progress=False, device="cpu")
    model.fit_classifier(ds)
    return model, ds


def _energy_to_test_target(model, ds, target, **settings):
    model.generator_config = GeneratorConfig(epochs=20, **settings)
    model.fit_generator(ds, target)
    test = model.split.index[model.split == "test"]
    y = ds.labels.loc[test].to_numpy()
    x = model.scale(ds.gem.loc[test])
    x_adv = model.perturb(ds.gem.loc[test], target).x_adv_scaled
    return energy_distance(x_adv[y != target].astype(float), x[y == target].astype(float)), model


def test_default_loss_lands_closer_to_real_target_samples_than_tspg_0_1(fitted):
    model, ds = fitted
    new, _ = _energy_to_test_target(model, ds, "Liver")
    old, _ = _energy_to_test_target(model, ds, "Liver", **OLD)
    # measured (20 epochs, 1-2 threads): 0.669 with the defaults against 0.756 with tspg 0.1's loss
    assert new < 0.95 * old


def test_individual_loss_is_zero_for_one_shift_per_group():
    groups = torch.tensor([0, 0, 1, 1, 1])
    shift = torch.tensor([[1.0, 2.0], [1.0, 2.0], [-1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    assert individual_loss(shift, groups, 3).item() == 0.0
    moved = shift.clone()
    moved[0] += torch.tensor([2.0, 0.0])  # one sample 2 units off: group 0's mean moves by 1, both samples 1 off
    assert individual_loss(moved, groups, 3).item() == pytest.approx((1.0 + 1.0) / 5)


def _plan(classifier, x_target, config):
    return AdversarialPlan(classifier, *new_adversary(x_target.shape[1], config, 0), x_target, 0, config, 0,
                           torch.device("cpu"))


def test_zero_init_generator_starts_as_the_identity(fitted):
    model, _ = fitted
    plan = _plan(model.classifier, np.random.default_rng(0).random((10, 200)).astype("float32"), GeneratorConfig())
    x = torch.rand(8, 200)
    plan.generator.eval()
    assert torch.equal(plan.generator(x), torch.zeros(8, 200))
    paper = _plan(model.classifier, np.random.default_rng(0).random((10, 200)).astype("float32"),
                  GeneratorConfig(**PAPER_LOSS))
    paper.generator.eval()
    assert paper.generator(x).abs().mean() > 0.01


def test_discriminator_real_batch_is_the_target_class(fitted, monkeypatch):
    model, _ = fitted
    x_target = np.full((6, 200), 0.25, dtype="float32")
    seen = []
    for disc_real in ("target", "all"):
        plan = _plan(model.classifier, x_target, GeneratorConfig(disc_real=disc_real))
        forward, pair = plan.discriminator.forward, plan.discriminator.pair
        monkeypatch.setattr(plan.discriminator, "forward", lambda v, f=forward: (seen.append(v.clone()), f(v))[1])
        monkeypatch.setattr(plan.discriminator, "pair",
                            lambda a, b, f=pair: (seen.extend([a.clone(), b.clone()]), f(a, b))[1])
        seen.clear()
        plan.step(torch.full((8, 200), 0.75))
        assert len(seen) == 3  # D(real), D(x_adv) for D's update, D(x_adv) for G's
        assert torch.all(seen[0] == (0.25 if disc_real == "target" else 0.75))


def test_realism_checkpoint_prefers_the_realistic_epoch_once_accuracy_is_enough():
    realistic = {"val_accuracy": 0.96, "val_margin": 1.0, "val_dist": 0.2, "val_energy": 0.3}
    collapsed = {"val_accuracy": 1.0, "val_margin": 5.0, "val_dist": 0.1, "val_energy": 0.9}
    assert checkpoint_score(realistic) > checkpoint_score(collapsed)
    assert checkpoint_score(realistic, "margin") < checkpoint_score(collapsed, "margin")
    weak = {**realistic, "val_accuracy": 0.5, "val_energy": 0.01}
    assert checkpoint_score(weak) < checkpoint_score(collapsed)  # accuracy below 0.95 still comes first


def test_without_an_independent_reference_only_confident_calls_rank_epochs():
    prior_alone = {"val_accuracy": 1.0, "val_energy": 0.6, "val_energy_scored": 0.0}
    trained = {**prior_alone, "val_energy": 0.5}
    assert checkpoint_score(trained) == checkpoint_score(prior_alone)  # a tie: max() keeps the earlier epoch
    assert max([prior_alone, trained], key=checkpoint_score) is prior_alone
    assert checkpoint_score({**trained, "val_energy_scored": 1.0}) > checkpoint_score(
        {**prior_alone, "val_energy_scored": 1.0})
    assert checkpoint_score({**trained, "val_accuracy": 0.5}) < checkpoint_score(prior_alone)


def test_without_an_independent_reference_the_out_of_fold_training_calls_count_too():
    # validation samples all called, but the prior alone leaves 3 of 20 training samples' out-of-fold moves short
    prior_alone = {"val_accuracy": 1.0, "val_confident": 1.0, "val_energy": 0.6, "val_energy_scored": 0.0,
                   "calls_confident": 0.85}
    trained = {**prior_alone, "val_energy": 0.5, "calls_confident": 1.0}
    assert max([prior_alone, trained], key=checkpoint_score) is trained
    # ... the same cap: once the prior alone calls enough of them, a tie keeps it
    enough = {**prior_alone, "calls_confident": 0.95}
    assert checkpoint_score(enough) == checkpoint_score(trained)
    assert max([enough, trained], key=checkpoint_score) is enough
    # where the row has no such figure (NaN: energies scored, or no out-of-fold prior) the validation's decides
    assert checkpoint_score({**prior_alone, "calls_confident": float("nan")}) == checkpoint_score(
        {k: v for k, v in prior_alone.items() if k != "calls_confident"}) == (0.95, 0.0)


def test_out_of_fold_check_moves_other_classes_rows_by_the_prior_fitted_without_them(fitted, monkeypatch):
    from tspg.nn import perturb
    from tspg.train import _adversarial
    from tspg.train._losses import target_margins
    from tspg.train._prior import CrossFittedTransport, RowMoves

    model, ds = fitted[:2]
    x = model.scale(ds.gem)
    y = np.searchsorted(model.classes, ds.labels.astype(str).to_numpy())
    tr = model.split.reindex(ds.gem.index).to_numpy() == "train"
    xt, yt = x[tr], y[tr]
    cross = CrossFittedTransport.fit(xt, yt, 0, len(model.classes), shrink="eb", covariance="blend")
    plan = _plan(model.classifier, xt[yt == 0], GeneratorConfig())
    plan.train_classes = torch.as_tensor(yt)
    xtt = torch.as_tensor(xt)
    moves = RowMoves(cross, xtt, plan.train_classes)  # each row by its label's map, as training moves it
    check = _adversarial.out_of_fold_check(plan, moves, xtt)
    assert np.array_equal(check.rows, np.flatnonzero(yt != 0))
    xo, do = check.moves(0, len(check))
    rows, _ = cross.grouped(check.rows)  # the order of the moved rows: those of one fold prior together
    assert sorted(rows) == sorted(check.rows) and torch.equal(xo, xtt[rows])
    for i in (0, len(rows) // 2, len(rows) - 1):
        r = rows[i]
        want = cross.priors[cross.group[r]](xtt[r:r + 1], torch.as_tensor(yt[r:r + 1]))
        torch.testing.assert_close(do[i:i + 1], want)
    assert 0 <= cross.group[rows].min() and cross.group[rows].max() < len(cross.priors) - 1  # never the whole prior
    # the calls counted a chunk at a time are those of all rows at once
    g = plan.generator.eval()
    with torch.no_grad():
        x_adv, _ = perturb(g, xo, do)
        want = int((target_margins(model.classifier(x_adv), 0) >= _adversarial.MARGIN_ENOUGH).sum())
    monkeypatch.setattr(_adversarial, "OOF_CHUNK", 5)
    assert check.confident(g, model.classifier, 0) == want
    monkeypatch.setattr(_adversarial, "MAX_OOF_CHECK", 7)  # a seeded sample of them
    first, again = (_adversarial.out_of_fold_check(plan, moves, xtt).rows for _ in range(2))
    assert len(first) == 7 and np.array_equal(first, again)
    # one fold (too few target samples for more): no out-of-fold prior, no check
    one = CrossFittedTransport(cross.group * 0, cross.priors[-1:])
    assert _adversarial.out_of_fold_check(plan, RowMoves(one, xtt, plan.train_classes), xtt) is None
    assert _adversarial.out_of_fold_check(plan, None, xtt) is None


def _row(epoch, conf=1.0, energy=0.6, z=float("nan")):
    return {"epoch": epoch, "val_accuracy": conf, "val_confident": conf, "val_margin": 1.0, "val_dist": 0.1,
            "val_energy": energy, "val_energy_scored": 1.0, "val_energy_z": z}


def _keeper_epoch(rows, rule="realism"):
    """The epoch a Keeper keeps when offered ``rows`` (epoch 0 first, as a fit with a prior does)."""
    from tspg.train._adversarial import Keeper

    keeper = Keeper(torch.nn.Linear(2, 2), GeneratorConfig(checkpoint=rule, patience=0), "test")
    keeper.start(rows[0])
    for r in rows[1:]:
        keeper.offer(r)
    return keeper.best_epoch


def test_the_prior_alone_gives_way_only_to_a_clear_energy_gain_or_more_confident_calls():
    prior = _row(0)
    noise = _row(1, energy=0.59, z=-1.0)  # lower, but within the noise of the validation samples
    clear = _row(2, energy=0.58, z=-2.5)
    later = _row(3, energy=0.57, z=-1.0)  # among trained epochs the plain rule: lower is better
    unsure = _row(0, conf=0.8)
    surer = _row(1, conf=0.9, energy=0.65, z=1.5)  # more confident calls, not clearly less realistic
    for rows, want in (([prior, noise], 0), ([prior, noise, clear], 2), ([prior, noise, clear, later], 3),
                       ([prior, _row(1, conf=0.5, energy=0.5, z=-9.0)], 0),  # accuracy comes first
                       ([unsure, surer], 1),  # more confident calls
                       # ... but never at a clear loss of realism against the prior alone, kept or not
                       ([unsure, _row(1, conf=1.0, energy=0.7, z=3.0)], 0),
                       ([unsure, surer, _row(2, conf=1.0, energy=0.7, z=2.0)], 1)):
        assert kept_row(rows)["epoch"] == want == _keeper_epoch(rows)
    # without a z (no prior, or too few validation target samples) and under the margin rule: the plain maximum
    plain = [{k: v for k, v in r.items() if k != "val_energy_z"} for r in (prior, noise)]
    assert kept_row(plain)["epoch"] == 1 == _keeper_epoch(plain)
    closer = {**noise, "val_dist": 0.05}  # the margin rule's tie-break
    assert kept_row([prior, closer], "margin")["epoch"] == _keeper_epoch([prior, closer], "margin") == 1


def test_a_fit_with_a_prior_records_its_energy_gain_over_the_prior(fitted):
    model, ds = fitted
    model.generator_config = GeneratorConfig(epochs=4, patience=0)
    model.fit_generator(ds, "Liver")
    hist = model.generator_histories["Liver"]
    assert hist[0]["epoch"] == 0 and np.isnan(hist[0]["val_energy_z"])
    assert all(np.isfinite(r["val_energy_z"]) for r in hist[1:])
    # its sign is that of the change of the recorded validation energy distance against epoch 0's
    moved = [r for r in hist[1:] if abs(r["val_energy"] - hist[0]["val_energy"]) > 1e-4]
    assert moved
    assert all(np.sign(r["val_energy_z"]) == np.sign(r["val_energy"] - hist[0]["val_energy"]) for r in moved)


def test_validation_energy_is_measured_against_the_validation_targets(fitted):
    from tspg.nn import perturb
    from tspg.train import fit_generator, predict_logits
    from tspg.train._losses import energy_loss

    model, ds = fitted[:2]
    x = model.scale(ds.gem)
    y = np.searchsorted(model.classes, ds.labels.astype(str).to_numpy())
    part = model.split.reindex(ds.gem.index).to_numpy()
    tr, va = part == "train", part == "val"
    ref = x[va & (y == 0)]
    assert len(ref) >= 3
    runs = {}
    for name, r in (("val", ref), ("few", ref[:2])):
        gen, hist = fit_generator(model.classifier, x[tr], x[tr & (y == 0)], 0, x[va],
                                  GeneratorConfig(epochs=2, patience=0), seed=1, progress=False, y_train=y[tr],
                                  x_target_val=r)
        runs[name] = gen, hist
    assert {r["val_energy_scored"] for r in runs["val"][1]} == {1.0}
    assert {r["val_energy_scored"] for r in runs["few"][1]} == {0.0}  # a prior and < 3 validation targets
    # ... where the out-of-fold moves of the training samples are called beside the validation samples
    assert all(0 <= r["train_oof_confident"] <= 1 and 0 <= r["calls_confident"] <= 1 for r in runs["few"][1])
    assert not any("calls_confident" in r for r in runs["val"][1])
    # the kept epoch's recorded validation energy is that of its perturbed validation samples to `ref`
    gen, hist = runs["val"]
    best = kept_row(hist)
    xv = x[va][predict_logits(model.classifier, x[va]).argmax(1).numpy() != 0]
    with torch.no_grad():
        v_adv, _ = perturb(gen, torch.as_tensor(xv))
        want = energy_loss(v_adv, torch.as_tensor(ref), torch.as_tensor(x[tr & (y == 0)].mean(0)), unbiased=False)
    assert best["val_energy"] == pytest.approx(float(want), rel=1e-4)


def test_config_rejects_unknown_loss_names():
    for field in ("td_loss", "disc_real", "checkpoint"):
        with pytest.raises(ValueError, match=field):
            GeneratorConfig(**{field: "nonsense"})


def test_group_mean_loss_weights_each_group_by_its_size():
    from tspg.train._losses import group_mean_loss

    groups = torch.tensor([0, 0, 1])
    x_adv = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 5.0]])
    # group 0's mean (2, 0) is 4 from the target mean 0, twice; group 1's (5, 5) is 50, once
    assert group_mean_loss(x_adv, torch.zeros(2), groups, 3).item() == pytest.approx((2 * 4 + 50) / 3)


def test_realism_checkpoint_counts_only_confident_calls():
    # every validation sample just across f's boundary: plainly accurate, but not with a margin of MARGIN_ENOUGH
    borderline = {"val_accuracy": 1.0, "val_confident": 0.5, "val_margin": 0.2, "val_dist": 0.1, "val_energy": 0.2}
    confident = {"val_accuracy": 1.0, "val_confident": 1.0, "val_margin": 4.0, "val_dist": 0.1, "val_energy": 0.4}
    assert checkpoint_score(confident) > checkpoint_score(borderline)
    assert checkpoint_score({**borderline, "val_confident": 0.96}) > checkpoint_score(confident)  # both enough


def test_confident_share_is_the_share_with_margin_at_least_one_logit():
    from tspg.train._adversarial import MARGIN_ENOUGH
    from tspg.train._losses import target_margins

    logits = torch.tensor([[0.0, 2.0, 0.5], [0.0, 0.5, 0.0], [3.0, 1.0, 0.0]])
    margins = target_margins(logits, 1)
    assert margins.tolist() == [1.5, 0.5, -2.0]
    assert ((margins >= MARGIN_ENOUGH).float().mean()).item() == pytest.approx(1 / 3)


def test_an_epoch_too_unrealistic_to_keep_does_not_reset_the_patience():
    from tspg.train._adversarial import Keeper

    def stops_after(rows):
        keeper = Keeper(torch.nn.Linear(2, 2), GeneratorConfig(patience=2), "test")
        keeper.start(rows[0])
        for r in rows[1:]:
            if keeper.offer(r):
                return r["epoch"]
        return None

    unsure = _row(0, conf=0.8)
    # more confident calls at a clear loss of realism: no progress, so two such epochs end the fit
    assert stops_after([unsure, _row(1, conf=0.9, energy=0.7, z=3.0), _row(2, conf=1.0, energy=0.7, z=3.0),
                        _row(3, conf=1.0, energy=0.7, z=3.0)]) == 2
    # the same calls without that loss are progress (and kept): the count starts again at each
    assert stops_after([unsure, _row(1, conf=0.9, energy=0.62, z=1.0), _row(2, conf=1.0, energy=0.62, z=1.0),
                        _row(3, conf=1.0, energy=0.62, z=1.0)]) is None


def test_out_of_fold_calls_count_from_gs_own_training_margin_once_g_has_trained(fitted, monkeypatch):
    """The out-of-fold rows are G's training rows: a trained epoch's calls on them count from kappa (never below
    the 1-logit margin of new samples); the prior alone (epoch 0) has not seen them and keeps the 1-logit margin."""
    from tspg.train import _adversarial, fit_generator

    assert _adversarial.oof_margin(5.0) == 5.0 and _adversarial.oof_margin(2.5) == 2.5
    assert _adversarial.oof_margin(0.0) == _adversarial.MARGIN_ENOUGH == 1.0
    model, ds = fitted[:2]
    x = model.scale(ds.gem)
    y = np.searchsorted(model.classes, ds.labels.astype(str).to_numpy())
    part = model.split.reindex(ds.gem.index).to_numpy()
    tr, va = part == "train", part == "val"
    confident = _adversarial.OutOfFoldCheck.confident
    for kappa, want in ((3.0, 3.0), (0.5, 1.0)):
        seen = []

        def spy(self, generator, classifier, target, margin=_adversarial.MARGIN_ENOUGH, seen=seen):
            seen.append((margin, confident(self, generator, classifier, target, margin), len(self)))
            return seen[-1][1]

        monkeypatch.setattr(_adversarial.OutOfFoldCheck, "confident", spy)
        _, hist = fit_generator(model.classifier, x[tr], x[tr & (y == 0)], 0, x[va],
                                GeneratorConfig(epochs=2, patience=0, kappa=kappa), seed=1, progress=False,
                                y_train=y[tr], x_target_val=x[va & (y == 0)][:2])  # too few to score realism
        assert [m for m, _, _ in seen] == [1.0] + [want] * (len(hist) - 1)  # epoch 0: the prior alone
        assert [r["train_oof_confident"] for r in hist] == [c / n for _, c, n in seen]
