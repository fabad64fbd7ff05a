import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tspg import TSPG
from tspg.data import Dataset, InputError, make_atlas
from tspg.model import Perturbation, target_dirname
from tspg.train import ClassifierConfig, GeneratorConfig, predict_logits


@pytest.fixture(scope="module")
def small():
    atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=40, n_markers=5, marker_strength=2.0, seed=3)
    ds = Dataset(atlas.gem, atlas.labels)
    model = TSPG(ClassifierConfig(epochs=15), GeneratorConfig(epochs=25, patience=0), seed=1, progress=False)
    model.fit(ds, targets=["Liver"])
    return ds, model


def test_target_dirname_keeps_safe_characters_only():
    assert target_dirname("Heart - Left Ventricle") == "Heart_-_Left_Ventricle"
    assert target_dirname("CD14+ Monocyte") == "CD14__Monocyte"
    assert target_dirname("a.b_c-1") == "a.b_c-1"
    assert target_dirname("Skin (sun exposed)/x") == "Skin__sun_exposed__x"


def test_fit_learns_the_classifier_and_the_transition(small):
    ds, model = small
    assert model.classifier_metrics(ds)["accuracy"] >= 0.9
    test = model.split[model.split == "test"].index
    m = model.perturb(ds.gem.loc[test], "Liver", labels=ds.labels).metrics()
    assert m["n_perturbed"] == len(test)
    assert m["perturbation_accuracy"] >= 0.9
    assert set(m["by_source"]) == set(ds.classes)


def test_split_is_stratified_and_scaler_fitted_on_training_part(small):
    ds, model = small
    for cls in ds.classes:
        parts = model.split[ds.labels == cls].value_counts()
        assert parts["test"] == 8 and parts["val"] >= 1
    train = ds.gem.loc[model.split == "train"].to_numpy()
    np.testing.assert_allclose(model.scaler.data_min, train.min(0), rtol=1e-6)
    scaled_train = model.scaler.transform(train)
    assert scaled_train.min() == 0.0 and np.isclose(scaled_train.max(), 1.0)


def test_save_load_round_trip_gives_identical_outputs(small, tmp_path):
    ds, model = small
    model.save(tmp_path)
    loaded = TSPG.load(tmp_path, progress=False)
    a = model.perturb(ds.gem, "Liver")
    b = loaded.perturb(ds.gem, "Liver")
    np.testing.assert_array_equal(a.x_adv_scaled, b.x_adv_scaled)
    np.testing.assert_array_equal(model.predict_proba(ds.gem).to_numpy(), loaded.predict_proba(ds.gem).to_numpy())
    assert loaded.genes == model.genes and loaded.classes == model.classes
    assert (loaded.split == model.split).all()


def test_classifier_file_without_input_centre_loads_uncentred(small, tmp_path):
    # files written before the classifier centred its input have no "center": it loads as zeros (no centring)
    from safetensors.torch import load_file, save_file

    ds, model = small
    model.save(tmp_path)
    path = tmp_path / "classifier.safetensors"
    state = load_file(str(path))
    assert np.abs(state["center"].numpy()).max() > 0.1
    del state["center"]
    save_file(state, str(path), metadata={"format": "pt"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    manifest["format_version"] = 1
    del manifest["classifier_sha256"]  # version-1 folders recorded no weights digests
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    loaded = TSPG.load(tmp_path, progress=False)
    assert float(loaded.classifier.center.abs().max()) == 0.0
    assert not np.allclose(model.predict_proba(ds.gem).to_numpy(), loaded.predict_proba(ds.gem).to_numpy())


def test_load_refuses_an_unknown_format_version(small, tmp_path):
    _, model = small
    model.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="format version 99 is not one this tspg"):
        TSPG.load(tmp_path)


def test_load_refuses_data_without_the_model_genes(small, tmp_path):
    ds, model = small
    model.save(tmp_path)
    loaded = TSPG.load(tmp_path, progress=False)
    with pytest.raises(InputError, match="lacks 2 of the model's 60 genes"):
        loaded.perturb(ds.gem.drop(columns=ds.gem.columns[:2]), "Liver")
    # extra genes and another column order are fine
    shuffled = ds.gem[ds.gem.columns[::-1]].assign(EXTRA=1.0)
    np.testing.assert_array_equal(loaded.perturb(shuffled, "Liver").x_adv_scaled,
                                  loaded.perturb(ds.gem, "Liver").x_adv_scaled)
    with pytest.raises(InputError, match="No generator for target 'Lung'"):
        loaded.perturb(ds.gem, "Lung")
    with pytest.raises(InputError, match="not a tspg run folder"):
        TSPG.load(tmp_path / "nothing")


def test_perturbation_units_and_accuracy_definition(small):
    ds, model = small
    res = model.perturb(ds.gem.iloc[:10], "Liver", labels=ds.labels)
    orig = ds.gem.iloc[:10][model.genes]
    # perturbed (original units) = x + perturbation (original units)
    np.testing.assert_allclose(res.perturbed_expr.to_numpy(), orig.to_numpy() + res.perturbation_expr.to_numpy(),
                               rtol=1e-4, atol=1e-3)
    # scaled perturbation in [-1, 1]; x_adv in [0, 1]
    assert res.perturbation_scaled.abs().to_numpy().max() <= 1.0
    assert 0.0 <= res.x_adv_scaled.min() and res.x_adv_scaled.max() <= 1.0

    # perturbation accuracy: the share of the samples f did NOT already call the target that f calls the target
    # after the perturbation. 10 samples, f's calls taken here from the classifier itself: 3 Liver samples f calls
    # Liver, and 4 Heart + 3 Lung samples that f calls their own class and, perturbed, Liver; then one Heart and one
    # Lung sample are left unperturbed (x_adv = x), so f still calls them their own class.
    classes = np.asarray(model.classes, dtype=object)
    everyone = model.perturb(ds.gem, "Liver", labels=ds.labels)
    before = pd.Series(model.predict_proba(ds.gem).idxmax(axis=1).to_numpy(), index=everyone.samples)
    after = pd.Series(classes[predict_logits(model.classifier, everyone.x_adv_scaled).argmax(1).numpy()],
                      index=everyone.samples)
    labels = ds.labels.reindex(everyone.samples)

    def first(cls: str, n: int, moved: bool) -> list[str]:
        ok = (labels == cls) & (before == cls) & ((after == "Liver") if moved else True)
        return list(ok.index[ok][:n])

    heart, lung = "Heart - Left Ventricle", "Lung"
    chosen = first("Liver", 3, False) + first(heart, 4, True) + first(lung, 3, True)
    assert len(chosen) == 10
    gem = ds.gem.loc[chosen]
    res = model.perturb(gem, "Liver", labels=ds.labels)
    assert [model.classes[i] for i in res.proba_before.argmax(1)] == before[chosen].tolist()
    assert [model.classes[i] for i in res.proba_after.argmax(1)] == ["Liver"] * 10
    m = res.metrics()
    assert m["n_perturbed"] == 10 and m["n_not_already_target"] == 7
    assert m["perturbation_accuracy"] == 1.0 and m["perturbation_accuracy_all"] == 1.0

    unmoved = [chosen.index(first(heart, 1, True)[0]), chosen.index(first(lung, 1, True)[0])]
    x_adv, proba_after = res.x_adv_scaled.copy(), res.proba_after.copy()
    x_adv[unmoved], proba_after[unmoved] = res.x_scaled[unmoved], res.proba_before[unmoved]
    m = dataclasses.replace(res, x_adv_scaled=x_adv, proba_after=proba_after).metrics()
    assert m["n_not_already_target"] == 7  # the 3 Liver samples are not counted ...
    assert m["perturbation_accuracy"] == pytest.approx(5 / 7, abs=1e-6)  # ... 5 of the other 7 moved
    assert m["perturbation_accuracy_all"] == pytest.approx(8 / 10, abs=1e-6)  # the Liver samples count here
    assert m["by_source"]["Liver"] == {"n": 3, "n_not_already_target": 0, "perturbation_accuracy": None,
                                       "perturbation_accuracy_all": 1.0}
    assert m["by_source"][heart]["n_not_already_target"] == 4
    assert m["by_source"][heart]["perturbation_accuracy"] == pytest.approx(3 / 4, abs=1e-6)
    assert m["by_source"][lung]["n_not_already_target"] == 3
    assert m["by_source"][lung]["perturbation_accuracy"] == pytest.approx(2 / 3, abs=1e-6)


def test_metrics_exclude_samples_already_called_the_target():
    classes = ["A", "B"]
    before = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.9, 0.1]])
    after = np.array([[0.1, 0.9], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    from tspg.data import MinMaxScaler

    p = Perturbation("B", ["s1", "s2", "s3", "s4"], pd.Series(["A", "A", "B", "A"], index=["s1", "s2", "s3", "s4"]),
                     np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32),
                     MinMaxScaler(np.zeros(2, np.float32), np.ones(2, np.float32)), ["g1", "g2"], classes, before,
                     after)
    m = p.metrics()
    assert m["perturbation_accuracy"] == pytest.approx(2 / 3)  # s3 was already B: excluded
    assert m["perturbation_accuracy_all"] == pytest.approx(3 / 4)
    assert m["n_not_already_target"] == 3
    assert m["by_source"]["A"]["perturbation_accuracy"] == pytest.approx(2 / 3)
