"""--transform: log transforms of counts, the rule that spots counts, and the transform's place in a run."""

import json
import logging

import numpy as np
import pytest

from tspg import TSPG
from tspg.data import (
    Dataset,
    InputError,
    apply_transform,
    load_dataset,
    looks_like_counts,
    make_atlas,
)
from tspg.train import ClassifierConfig, GeneratorConfig


def counts_atlas(seed=0, **kw):
    """A synthetic atlas in linear counts: the log2-scale atlas exponentiated (2^x - 1), rounded."""
    a = make_atlas(seed=seed, **kw)
    return a, np.round(np.exp2(a.gem) - 1.0).astype(np.float32)


def test_log_transforms_and_their_refusal_of_negative_values():
    x = np.array([[0.0, 1.0, 3.0, np.nan]], dtype=np.float32)
    np.testing.assert_allclose(apply_transform(x, "log2p1"), [[0.0, 1.0, 2.0, np.nan]])
    np.testing.assert_allclose(apply_transform(x, "log1p"), np.log1p(x))
    assert apply_transform(x, "none") is x
    with pytest.raises(InputError, match="2 negative value"):
        apply_transform(np.array([[-1.0, 2.0, -0.5]]), "log2p1", "the data")
    with pytest.raises(InputError, match="Unknown transform"):
        apply_transform(x, "log10")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_rule_on_both_sides(seed):
    a, counts = counts_atlas(seed=seed, n_classes=4, n_genes=200, samples_per_class=20)
    rng = np.random.default_rng(seed)
    logs = a.gem.to_numpy()
    assert looks_like_counts(counts.to_numpy())[0]  # linear counts
    assert looks_like_counts(counts.to_numpy() * 1e3)[0]  # e.g. RSEM, up to millions
    assert not looks_like_counts(logs)[0]  # log2 units (max ~13)
    assert not looks_like_counts(np.log1p(counts.to_numpy()))[0]  # ln units
    assert not looks_like_counts((logs - logs.mean(0)) / logs.std(0))[0]  # z-scores: negative values
    assert not looks_like_counts(rng.uniform(0, 1000, (50, 50)))[0]  # large but not skewed
    assert not looks_like_counts(counts.to_numpy() - 50.0)[0]  # background-subtracted intensities go negative


@pytest.mark.slow
def test_counts_rule_on_the_real_data(shared_data):
    leuk = load_dataset(shared_data / "leukemia" / "Leukemia_hgu95av2.trim.gct",
                        shared_data / "leukemia" / "Leukemia.cls")
    ok, why = looks_like_counts(leuk.gem.to_numpy())
    assert not ok and "maximum" in why  # MAS5 intensities with negative values: not transformable by log
    pbmc = load_dataset(shared_data / "pbmc68k" / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels", use_raw=True)
    assert not looks_like_counts(pbmc.gem.to_numpy())[0]  # log-normalised


@pytest.fixture(scope="module")
def counts_model():
    a, counts = counts_atlas(seed=3, n_classes=3, n_genes=120, samples_per_class=30)
    ds = Dataset(counts, a.labels.astype(str))
    model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=1), seed=0, progress=False, device="cpu",
                 transform="log2p1")
    model.fit_classifier(ds)
    return model, ds, a


def test_a_run_with_a_transform_scales_log_units_and_records_them(counts_model, tmp_path):
    model, ds, a = counts_model
    train = model.split.index[model.split == "train"]
    logs = np.log2(ds.gem.loc[train].to_numpy(np.float64) + 1.0)
    np.testing.assert_allclose(model.scaler.data_min, logs.min(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.scaler.data_range, logs.max(0) - logs.min(0), rtol=1e-4, atol=1e-4)
    # a later input in counts is transformed the same way (genes in another order too)
    shuffled = ds.gem.iloc[:5, ::-1]
    np.testing.assert_allclose(model.scale(shuffled), model.scaler.transform(np.log2(ds.gem.iloc[:5] + 1.0)),
                               atol=1e-6)
    target = sorted(a.labels.unique())[0]
    model.fit_generator(ds, target)
    p = model.perturb(ds.gem.iloc[:8], target)
    np.testing.assert_allclose(p.perturbed_expr - p.perturbation_expr, np.log2(ds.gem.iloc[:8] + 1.0), atol=1e-4)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["transform"] == "log2p1"
    assert manifest["expression_units"] == "log2(x + 1) of the input"
    loaded = TSPG.load(tmp_path / "run", progress=False)
    assert loaded.transform == "log2p1"
    np.testing.assert_array_equal(loaded.perturb(ds.gem.iloc[:8], target).x_adv_scaled, p.x_adv_scaled)
    with pytest.raises(InputError, match="negative value"):
        model.perturb(-ds.gem.iloc[:2], target)


def test_counts_without_a_transform_get_one_warning_line(caplog):
    a, counts = counts_atlas(seed=4, n_classes=3, n_genes=120, samples_per_class=20)
    for gem, transform, warned in ((counts, "none", True), (counts, "log2p1", False), (a.gem, "none", False)):
        caplog.clear()
        model = TSPG(ClassifierConfig(epochs=1), seed=0, progress=False, device="cpu", transform=transform)
        with caplog.at_level(logging.WARNING, logger="tspg"):
            model.fit_classifier(Dataset(gem, a.labels.astype(str)))
        lines = [r.getMessage() for r in caplog.records if "linear counts" in r.getMessage()]
        assert len(lines) == int(warned)
        if warned:
            assert "--transform log2p1" in lines[0]


def test_unknown_transform_is_refused():
    with pytest.raises(InputError, match="log2p1"):
        TSPG(transform="log")
