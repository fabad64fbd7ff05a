"""The Python API checks what the CLI checks: genes by name, target folders, configs, data sets, manifests."""

import numpy as np
import pandas as pd
import pytest
import torch

import tspg
from tspg import TSPG
from tspg.data import Dataset, InputError, make_atlas, match_genes, stratified_split
from tspg.model import read_manifest
from tspg.train import ClassifierConfig, GeneratorConfig


@pytest.fixture(scope="module")
def fitted():
    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=20, n_markers=4, marker_strength=2.0, seed=5)
    ds = Dataset(atlas.gem, atlas.labels)
    model = TSPG(ClassifierConfig(epochs=3), GeneratorConfig(epochs=2), seed=2, progress=False)
    model.fit_classifier(ds)
    return ds, model


def _reversed(ds: Dataset) -> Dataset:
    return Dataset(ds.gem[ds.gem.columns[::-1]], ds.labels)


def test_new_data_is_matched_by_gene_name_not_column_order(fitted):
    ds, model = fitted
    rev = _reversed(ds).gem
    np.testing.assert_array_equal(model.scale(rev), model.scale(ds.gem))
    before = model.predict_proba(ds.gem)
    pd.testing.assert_frame_equal(model.predict_proba(rev), before)


def test_generator_trained_on_reordered_genes_is_the_same(fitted):
    ds, model = fitted
    a = TSPG.__new__(TSPG)
    a.__dict__.update({**model.__dict__, "generators": {}, "generator_histories": {}, "generator_configs": {},
                       "generator_summaries": {}})
    a.fit_generator(ds, "Liver")
    b = TSPG.__new__(TSPG)
    b.__dict__.update({**model.__dict__, "generators": {}, "generator_histories": {}, "generator_configs": {},
                       "generator_summaries": {}})
    b.fit_generator(_reversed(ds), "Liver")
    for (ka, va), (kb, vb) in zip(a.generators["Liver"].state_dict().items(),
                                  b.generators["Liver"].state_dict().items(), strict=True):
        assert ka == kb
        assert torch.equal(va, vb), ka


def test_missing_gene_is_one_clear_error(fitted):
    ds, model = fitted
    with pytest.raises(InputError, match=r"lacks 1 of the model's 40 genes \(e.g. 'SYN00001'"):
        model.scale(ds.gem.iloc[:, 1:])


def test_ensembl_version_suffixes_are_ignored_when_matching():
    assert match_genes(["ENSG00000000003.14", "ENSG00000000005.6", "TP53"],
                       ["TP53", "ENSG00000000005", "ENSG00000000003.15"]).tolist() == [2, 1, 0]
    with pytest.raises(InputError, match="lacks 1"):
        # two versions of one gene: ambiguous, so no match
        match_genes(["ENSG00000000003.1", "ENSG00000000003.2"], ["ENSG00000000003"])


def test_targets_sharing_a_folder_name_are_refused(fitted, tmp_path):
    ds, model = fitted
    labels = ds.labels.replace({"Liver": "α cell", "Lung": "β cell"})
    greek = Dataset(ds.gem, labels)
    m = TSPG(ClassifierConfig(epochs=1), GeneratorConfig(epochs=1), progress=False)
    with pytest.raises(InputError, match="both map to the folder name '__cell'"):
        m.fit(greek, targets=["α cell", "β cell"])
    m.fit(greek, targets=["α cell"])
    with pytest.raises(InputError, match="'α cell' and 'β cell' both map"):
        m.fit_generator(greek, "β cell")
    assert list(m.generators) == ["α cell"]
    m.generators["β cell"] = m.generators["α cell"]  # forced in by hand: save still refuses to overwrite
    with pytest.raises(InputError, match="both map"):
        m.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("cls", "kwargs", "words"), [
    (GeneratorConfig, {"batch_size": 1}, "GeneratorConfig.batch_size must be an integer >= 2, not 1"),
    (GeneratorConfig, {"epochs": 0}, "GeneratorConfig.epochs must be an integer >= 1"),
    (GeneratorConfig, {"kappa": float("nan")}, "GeneratorConfig.kappa must be a finite number"),
    (GeneratorConfig, {"target_cov": "dense"}, "GeneratorConfig.target_cov must be one of full, diagonal, lowrank"),
    (GeneratorConfig, {"stop_accuracy": 1.5}, "GeneratorConfig.stop_accuracy must be a finite number >= 0.0 and"),
    (ClassifierConfig, {"batch_size": 0}, "ClassifierConfig.batch_size must be an integer >= 1"),
    (ClassifierConfig, {"hidden": ()}, "ClassifierConfig.hidden must be a non-empty sequence"),
    (ClassifierConfig, {"precision": "fp16"}, "ClassifierConfig.precision must be one of auto, fp32, bf16"),
])
def test_configs_validate_their_fields(cls, kwargs, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(".", r"\.")):
        cls(**kwargs)


def test_a_config_changed_after_construction_is_checked_before_training(fitted):
    ds, model = fitted
    m = TSPG(ClassifierConfig(epochs=1), GeneratorConfig(epochs=1), progress=False)
    m.classifier_config.batch_size = 0
    with pytest.raises(InputError, match="ClassifierConfig.batch_size"):
        m.fit_classifier(ds)
    assert m.classifier is None  # refused before any training


def test_model_arguments_are_checked_at_construction():
    with pytest.raises(InputError, match="test_size must be between 0 and 1, not 2"):
        TSPG(test_size=2)
    with pytest.raises(InputError, match="Unknown impute 'avg'"):
        TSPG(impute="avg")
    with pytest.raises(InputError, match="seed must be an integer"):
        TSPG(seed=-1)


def test_api_errors_use_the_apis_words_and_the_cli_maps_them_to_flags():
    labels = pd.Series(["a", "b"] * 5, index=[f"s{i}" for i in range(10)])
    with pytest.raises(InputError) as info:
        stratified_split(labels, test_size=2)
    assert str(info.value) == "test_size must be between 0 and 1, not 2."
    assert info.value.cli_message() == "--test-size must be between 0 and 1, not 2."
    from tspg.cli import FLAGS

    err = InputError("`ClassifierConfig.epochs` must be an integer >= 1, not 0.")
    assert err.cli_message(FLAGS) == "--classifier-epochs must be an integer >= 1, not 0."
    assert InputError("`GeneratorConfig.sinkhorn_reg` bad").cli_message(FLAGS) == "GeneratorConfig.sinkhorn_reg bad"


@pytest.mark.parametrize(("labels", "words"), [
    (["a"] * 5 + ["b"] * 4 + ["c"], r"1 class\(es\) have fewer than 3 samples.*'c' \(1\)"),
    (["a"] * 10, "Only one class"),
    (["a", None] * 5, "2? ?missing label"),
])
def test_dataset_validates_itself(labels, words):
    gem = pd.DataFrame(np.ones((10, 3)), index=[f"s{i}" for i in range(10)], columns=["G1", "G2", "G3"])
    with pytest.raises(InputError, match=words):
        Dataset(gem, pd.Series(labels, index=gem.index, dtype=object))


def test_dataset_reorders_labels_to_the_gem_and_refuses_duplicates():
    gem = pd.DataFrame(np.arange(18.0).reshape(6, 3), index=[f"s{i}" for i in range(6)], columns=["G1", "G2", "G3"])
    labels = pd.Series(["a", "b"] * 3, index=gem.index)[::-1]
    ds = Dataset(gem, labels)
    assert list(ds.labels.index) == list(gem.index)
    assert ds.labels["s0"] == "a"
    dup = gem.rename(columns={"G2": "G1"})
    with pytest.raises(InputError, match="duplicated gene names"):
        Dataset(dup, labels)
    with pytest.raises(InputError, match="one label per GEM sample"):
        Dataset(gem, labels.iloc[1:])


@pytest.mark.parametrize(("text", "words"), [
    ('{"format": "tspg-run", "format_version": 2, "genes": [', "not valid JSON"),
    ('{"format": "tspg-run", "format_version": 2, "seed": 0}', "lacks 'config'"),
    ('[1, 2]', "not a tspg run manifest"),
    ('{"format": "tspg-run", "format_version": 2, "seed": 0, "config": {}, "classes": [], "genes": "x", '
     '"scaler": {}, "split": {}, "targets": {}}', "malformed 'genes'"),
])
def test_damaged_manifests_give_one_line(tmp_path, text, words):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(InputError, match=words):
        read_manifest(tmp_path)
    with pytest.raises(InputError, match=words):
        TSPG.load(tmp_path)


def test_training_leaves_the_global_random_state_alone(fitted):
    ds, _ = fitted
    torch.manual_seed(123)
    np.random.seed(7)
    state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    m = TSPG(ClassifierConfig(epochs=1), GeneratorConfig(epochs=1), seed=4, progress=False).fit(ds, ["Liver"])
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    # and the seed alone decides the weights, whatever the global state was
    torch.manual_seed(999)
    again = TSPG(ClassifierConfig(epochs=1), GeneratorConfig(epochs=1), seed=4, progress=False).fit(ds, ["Liver"])
    for a, b in zip(m.generators["Liver"].parameters(), again.generators["Liver"].parameters(), strict=True):
        assert torch.equal(a, b)


def test_settings_seed_is_the_default_seed():
    old = tspg.settings.seed
    try:
        tspg.settings.seed = 11
        assert TSPG(progress=False).seed == 11
        assert TSPG(seed=3, progress=False).seed == 3
    finally:
        tspg.settings.seed = old


def test_tsne_leaves_the_opentsne_logger_alone():
    import logging

    from tspg.tl import tsne_map

    logger = logging.getLogger("openTSNE")
    logger.setLevel(logging.DEBUG)
    try:
        rng = np.random.default_rng(0)
        tsne_map(rng.random((30, 5)), rng.random((5, 5)), seed=0)
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(logging.NOTSET)
