"""Marginal maps of the transport prior for zero-inflated genes, and the checkpoint's cap at the real target's calls."""

import numpy as np
import pandas as pd
import pytest
import torch

from tspg import TSPG
from tspg.cli import FLAGS, _configs
from tspg.data import Dataset, InputError
from tspg.nn import _modules as modules
from tspg.nn import quantile_map
from tspg.train import (
    ClassifierConfig,
    CrossFittedTransport,
    GeneratorConfig,
    config_from_dict,
    config_to_dict,
    fit_transport_prior,
    kept_row,
)
from tspg.train._adversarial import checkpoint_score


def _sparse(n: int = 60, genes: int = 40, seed: int = 0, dropout: tuple[float, ...] = (0.1, 0.1, 0.6)):
    """Three classes of clipped Gaussian expression with dropouts (exact zeros), the last class the sparsest."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n)
    mu = 0.2 + 0.6 * rng.random((3, genes))
    x = np.clip(mu[y] + 0.1 * rng.standard_normal((3 * n, genes)), 0, 1)
    x[rng.random(x.shape) < np.asarray(dropout)[y][:, None]] = 0.0
    return x.astype(np.float32), y


def _reference_map(v, classes, source, target):
    out = np.empty_like(v)
    for i, c in enumerate(classes):
        for g in range(v.shape[1]):
            out[i, g] = np.interp(v[i, g], source[c, :, g], target[:, g])
    return out


def test_quantile_map_is_the_piecewise_linear_map_of_each_rows_class(monkeypatch):
    rng = np.random.default_rng(1)
    source = np.sort(rng.normal(size=(3, 9, 5)), axis=1).astype(np.float32)  # classes x levels x genes, distinct
    source[0, :4, 0] = source[0, 0, 0]  # and tied at the bottom for one class and gene
    target = np.sort(rng.random((9, 5)), axis=0).astype(np.float32)
    v = rng.normal(scale=1.5, size=(23, 5)).astype(np.float32)  # some below and above every knot
    classes = rng.integers(0, 3, 23)
    want = _reference_map(v, classes, source, target)
    args = torch.as_tensor(v), torch.as_tensor(classes), torch.as_tensor(source), torch.as_tensor(target)
    got = quantile_map(*args, grouped=True)  # the rows of each class together
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    assert (got.numpy() >= target[0] - 1e-7).all() and (got.numpy() <= target[-1] + 1e-7).all()
    # the path without host synchronisation (each row's quantiles gathered, two rows at a time): the same numbers
    monkeypatch.setattr(modules, "_QUANTILE_MAP_CHUNK", 9 * 5 * 2)
    assert torch.equal(quantile_map(*args, grouped=False), got)
    assert torch.equal(quantile_map(*args), got)  # the CPU's default picks one of them
    for dtype in (torch.uint8, torch.int16, torch.int32):  # class indices of any integer type
        assert torch.equal(quantile_map(args[0], args[1].to(dtype), *args[2:]), got)


def test_quantile_map_on_the_cpu_gathers_few_values_and_groups_many(monkeypatch):
    """A class taken on its own costs a fixed overhead: few values per class present are gathered in one pass."""
    calls = []
    real = modules._piecewise
    monkeypatch.setattr(modules, "_piecewise", lambda v, xs, ys: calls.append(len(v)) or real(v, xs, ys))
    rng = np.random.default_rng(2)
    source = torch.as_tensor(np.sort(rng.random((53, 17, 40)), axis=1), dtype=torch.float32)
    target = torch.as_tensor(np.sort(rng.random((17, 40)), axis=0), dtype=torch.float32)
    classes = torch.arange(128) % 53
    few = torch.rand(128, 1)  # one gene: 128 values for 53 classes
    out = quantile_map(few, classes, source[..., :1], target[:, :1])
    assert calls == [128]
    assert torch.equal(out, quantile_map(few, classes, source[..., :1], target[:, :1], grouped=True))
    calls.clear()
    quantile_map(torch.rand(256 * 53, 40), torch.arange(256 * 53) % 53, source, target)  # 10,240 values a class
    assert calls == [256] * 53


def test_quantile_map_with_tied_knots_is_monotone_and_finite():
    source = torch.tensor([[0.0, 0.0, 0.0, 0.5, 1.0]]).T.unsqueeze(0)  # a point mass in the source (1 x 5 x 1)
    target = torch.tensor([[0.1, 0.15, 0.2, 0.6, 1.0]]).T
    v = torch.linspace(-0.5, 1.5, 41).unsqueeze(1)
    out = quantile_map(v, torch.zeros(41, dtype=torch.long), source, target).squeeze(1)
    assert torch.isfinite(out).all()
    assert (out.diff() >= 0).all()
    assert out[0] == 0.1 and out[-1] == 1.0  # below the first source point: the first target point
    at_tie = quantile_map(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), source, target)
    assert at_tie.item() == pytest.approx(0.1)  # a value at a tie: the first tied level's target point
    np.testing.assert_allclose(quantile_map(torch.full((1, 1), 0.25), torch.zeros(1, dtype=torch.long), source,
                                            target).item(), 0.4)  # above the tie: from its last level on


def test_zero_inflated_genes_get_the_targets_share_of_zeros():
    x, y = _sparse()
    plain = fit_transport_prior(x, y, 2, 3, shrink="eb", covariance="blend")
    mapped = fit_transport_prior(x, y, 2, 3, shrink="eb", covariance="blend", marginals="zero-inflated")
    assert plain.marginal_genes is None and "marginal_source" not in plain.state_dict()
    assert len(mapped.marginal_genes) == x.shape[1]  # 60% dropouts in the target: every gene
    assert mapped.marginal_classes.tolist() == [True, True, False]  # the target's own samples are not mapped
    target_zeros = (x[y == 2] <= 0).mean()
    for c in (0, 1):
        xc = torch.as_tensor(x[y == c])
        cls = torch.full((len(xc),), c)
        with torch.no_grad():
            with_maps = (xc + mapped(xc, cls)).clamp(0, 1)
            without = (xc + plain(xc, cls)).clamp(0, 1)
        assert abs((with_maps <= 0).float().mean().item() - target_zeros) < 0.05
        assert (without <= 0).float().mean().item() < 0.25
        # the non-zero part follows the target's too: per-gene means within the sampling noise
        np.testing.assert_allclose(with_maps.mean(0).numpy(), x[y == 2].mean(0), atol=0.08)
    # the target's own samples do not move
    xt = torch.as_tensor(x[y == 2])
    with torch.no_grad():
        assert mapped(xt, torch.full((len(xt),), 2)).abs().max() == 0.0


def test_data_without_zero_inflation_move_as_before_bit_for_bit():
    x, y = _sparse(dropout=(0.1, 0.1, 0.1))  # 10% zeros in the target: under the 30% that marks a gene
    plain = fit_transport_prior(x, y, 2, 3, shrink="eb", covariance="blend")
    mapped = fit_transport_prior(x, y, 2, 3, shrink="eb", covariance="blend", marginals="zero-inflated")
    assert mapped.marginal_genes is None
    xt = torch.as_tensor(x)
    with torch.no_grad():
        assert torch.equal(plain(xt, torch.as_tensor(y)), mapped(xt, torch.as_tensor(y)))


def test_a_target_of_few_samples_gets_no_marginal_maps():
    x, y = _sparse()
    keep = (y != 2) | (np.cumsum(y == 2) <= 9)  # 9 target training samples
    prior = fit_transport_prior(x[keep], y[keep], 2, 3, marginals="zero-inflated")
    assert prior.marginal_genes is None
    with pytest.raises(ValueError, match="marginals"):
        fit_transport_prior(x, y, 2, 3, marginals="quantile")


@pytest.mark.parametrize("n_target", [10, 40])
def test_fold_priors_map_the_whole_priors_genes_and_classes(n_target):
    x, y = _sparse()
    keep = (y != 2) | (np.cumsum(y == 2) <= n_target)  # 10: 8 per fold prior, under the 10 that choose genes
    x, y = x[keep], y[keep]
    y[:3] = 1  # class 0 keeps 57 samples; a class of 3 has 2 or 3 in a fold prior
    y[3:60] = 0
    y[60:63] = 0
    y[63:120] = 1
    cross = CrossFittedTransport.fit(x, y, 2, 3, folds=5, marginals="zero-inflated")
    whole = cross.priors[-1]
    assert whole.marginal_genes is not None
    for p in cross.priors[:-1]:
        assert torch.equal(p.marginal_genes, whole.marginal_genes)
        assert torch.equal(p.marginal_classes, whole.marginal_classes)
    assert not torch.equal(cross.priors[0].marginal_source, cross.priors[1].marginal_source)  # other samples
    # the training moves have the target's zeros as the whole prior's moves do
    moved = torch.as_tensor(x) + torch.as_tensor(cross.displacements(x))
    others = torch.as_tensor(y != 2)
    assert abs((moved[others].clamp(0, 1) <= 0).float().mean().item() - (x[y == 2] <= 0).mean()) < 0.08


def _sparse_dataset(seed: int = 0) -> Dataset:
    x, y = _sparse(n=50, genes=30, seed=seed)
    names = [f"s{i}" for i in range(len(x))]
    gem = pd.DataFrame(x * 8.0, index=names, columns=[f"g{j}" for j in range(x.shape[1])])
    return Dataset(gem, pd.Series(np.array(["A", "B", "Sparse"])[y], index=names))


def test_a_run_on_sparse_data_saves_and_reloads_its_marginal_maps(tmp_path):
    ds = _sparse_dataset()
    model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=2), seed=0, progress=False, device="cpu")
    model.fit_classifier(ds)
    model.fit_generator(ds, "Sparse")
    summary = model.generator_summaries["Sparse"]
    assert summary["prior_marginal_genes"] == 30 and summary["prior_marginal_levels"] == modules.MARGINAL_LEVELS
    test = model.split.index[model.split == "test"]
    before = model.perturb(ds.gem.loc[test], "Sparse", labels=ds.labels.loc[test]).x_adv_scaled
    moved = before[(ds.labels.loc[test] != "Sparse").to_numpy()]
    assert (moved <= 0).mean() > 0.4  # the target's 60% dropouts, against 10% in the other classes
    model.save(tmp_path / "run")
    loaded = TSPG.load(tmp_path / "run", progress=False)
    after = loaded.perturb(ds.gem.loc[test], "Sparse", labels=ds.labels.loc[test]).x_adv_scaled
    np.testing.assert_array_equal(before, after)
    # '--prior-marginals none': the map alone, and no maps saved
    model.generator_config = GeneratorConfig(epochs=2, prior_marginals="none")
    model.fit_generator(ds, "Sparse")
    assert "prior_marginal_genes" not in model.generator_summaries["Sparse"]
    plain = model.perturb(ds.gem.loc[test], "Sparse", labels=ds.labels.loc[test]).x_adv_scaled
    assert (plain[(ds.labels.loc[test] != "Sparse").to_numpy()] <= 0).mean() < 0.25


def test_the_setting_is_checked_read_from_old_configs_as_none_and_set_by_the_flag():
    with pytest.raises(InputError, match="prior_marginals"):
        GeneratorConfig(prior_marginals="quantile")
    assert GeneratorConfig().prior_marginals == "auto"
    assert config_from_dict(GeneratorConfig, {"epochs": 3}).prior_marginals == "none"
    assert config_from_dict(GeneratorConfig, config_to_dict(GeneratorConfig())).prior_marginals == "auto"
    assert _configs({"prior_marginals": "none"})[1].prior_marginals == "none"


def test_the_checkpoint_asks_no_more_calls_than_the_real_target_samples_get():
    prior = {"epoch": 0, "val_accuracy": 0.91, "val_confident": 0.91, "val_energy": 1.09, "val_energy_scored": 1.0,
             "val_energy_z": float("nan"), "val_target_confident": 0.89}
    trained = {**prior, "epoch": 2, "val_accuracy": 0.98, "val_confident": 0.95, "val_energy": 1.17,
               "val_energy_z": 1.7}
    assert checkpoint_score(prior)[0] == checkpoint_score(trained)[0] == 0.89
    assert kept_row([prior, trained])["epoch"] == 0  # more calls than the real ones get do not replace the prior
    uncapped = [{k: v for k, v in r.items() if k != "val_target_confident"} for r in (prior, trained)]
    assert kept_row(uncapped)["epoch"] == 2  # without the measurement: the usual cap (0.95)
    assert checkpoint_score({**prior, "val_target_confident": 1.0})[0] == 0.91


def test_a_fit_records_the_real_target_samples_calls_where_it_has_enough_of_them():
    ds = _sparse_dataset(seed=1)
    model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=1), seed=0, progress=False, device="cpu",
                 val_size=0.3)
    model.fit_classifier(ds)
    model.fit_generator(ds, "Sparse")
    rows = model.generator_histories["Sparse"]
    val = model.split.index[model.split == "val"]
    n_target = int((ds.labels.loc[val] == "Sparse").sum())
    assert n_target >= 5
    assert all(0.0 <= r["val_target_confident"] <= 1.0 for r in rows)
    assert len({r["val_target_confident"] for r in rows}) == 1  # measured once: f and the samples do not change


def test_the_command_words_the_conditional_refusal_as_flags():
    with pytest.raises(InputError) as info:
        _configs({"generator_kind": "conditional", "prior_marginals": "zero-inflated"})
    assert info.value.cli_message(FLAGS) == (
        "--prior-marginals zero-inflated is not available with --generator conditional (its prior has no marginal "
        "maps); use --prior-marginals auto or --prior-marginals none, or --generator per-target.")
    assert _configs({"generator_kind": "conditional", "prior_marginals": "auto"})[1].prior_marginals == "auto"
