import math

import numpy as np
import pandas as pd
import pytest

from tspg import TSPG, tl
from tspg.data import Dataset, make_atlas, prepare
from tspg.train import ClassifierConfig, GeneratorConfig, predict_logits

TARGET = "Liver"


@pytest.fixture(scope="module")
def run():
    """A TSPG model trained for a few epochs, its split in scaled units, references and held-out perturbations."""
    atlas = make_atlas(n_classes=3, n_genes=50, samples_per_class=30, n_markers=5, marker_strength=2.0, seed=4)
    ds = Dataset(atlas.gem, atlas.labels)
    model = TSPG(ClassifierConfig(hidden=(64, 32), epochs=15), GeneratorConfig(epochs=3, min_steps_per_epoch=2), seed=0,
                 progress=False)
    model.fit(ds, targets=[TARGET])
    prep = prepare(ds, model.classes, model.split, scaler=model.scaler, fill=model.fill, genes=model.genes)
    names = np.asarray(model.classes)
    tr, te = prep.part == "train", prep.part == "test"
    x_train, y_train, x, y = prep.x[tr], names[prep.y[tr]], prep.x[te], names[prep.y[te]]
    test_samples = ds.gem.index[te]
    pert = model.perturb(ds.gem.loc[test_samples], TARGET, labels=ds.labels)
    refs = tl.fit_references(x_train, y_train, seed=0)
    methods = {"tspg": pert.x_adv_scaled, **tl.perturb_baselines(x_train, y_train, x, y, TARGET)}

    def classify(v):
        return names[predict_logits(model.classifier, v).argmax(1).numpy()]

    return {"model": model, "refs": refs, "x": x, "y": y, "methods": methods, "classify": classify, "pert": pert,
            "x_train": x_train, "y_train": y_train}


@pytest.fixture(scope="module")
def frame(run):
    return tl.evaluate(run["refs"], run["x"], run["y"], TARGET, run["methods"], classify=run["classify"])


def test_frame_has_a_row_per_method_and_source_and_a_column_per_metric(run, frame):
    assert list(frame.columns) == ["method", "source", "n", *tl.METRICS]
    sources = ["Heart - Left Ventricle", "Lung", "all"]  # the target's own held-out samples are not scored
    methods = ["tspg", *tl.BASELINES, tl.FLOOR]
    assert frame[["method", "source"]].values.tolist() == [[m, s] for m in methods for s in sources]
    n = frame.set_index(["method", "source"])["n"]
    y = run["y"]
    assert n["tspg", "Lung"] == (y == "Lung").sum() and n["tspg", "all"] == (y != TARGET).sum()
    assert frame["method"].ne(tl.FLOOR).pipe(lambda m: frame.loc[m, "success_knn"].notna().all())


def test_success_under_f_is_the_model_perturbation_accuracy(run, frame):
    by_source = run["pert"].metrics()["by_source"]
    tspg = frame[frame["method"] == "tspg"].set_index("source")
    for source in ("Lung", "Heart - Left Ventricle"):
        expected = by_source[source]["perturbation_accuracy"]
        got = tspg.loc[source, "success_f"]
        assert (expected is None and math.isnan(got)) or got == pytest.approx(expected, abs=1e-6)


def test_identity_has_zero_success_and_zero_size(frame):
    identity = frame[frame["method"] == "identity"]
    for col in ("success_f", "success_logreg", "success_knn", "l1", "l2", "genes_moved"):
        assert ((identity[col] == 0) | identity[col].isna()).all(), col
    assert identity[["de_overlap", "de_direction", "pearson_delta"]].isna().all().all()


def test_baselines_behave_as_their_definitions_say(frame):
    row = frame[frame["source"] == "all"].set_index("method")
    # copying the target's training samples fools every independent classifier
    assert row.loc["nearest_target", "success_logreg"] >= 0.9 and row.loc["nearest_target", "success_knn"] >= 0.9
    assert row.loc["nearest_target", "centroid_accuracy"] >= 0.9
    # the class mean shift is the exact expected delta up to the clip, and moves along the DE genes
    assert row.loc["mean_shift", "pearson_delta"] > 0.9 and row.loc["mean_shift", "de_direction"] >= 0.9
    for method in ("mean_shift", "optimal_transport", "nearest_target"):
        assert row.loc[method, "energy_distance"] < row.loc["identity", "energy_distance"]
        assert row.loc[method, "r2_mean_de20"] > row.loc["identity", "r2_mean_de20"]
    floor = frame[frame["method"] == tl.FLOOR]
    assert floor[["energy_distance", "mmd", "r2_mean_all"]].notna().all().all()
    assert floor[["l2", "pearson_delta"]].isna().all().all()
    # its success: the share of the real held-out target samples each classifier calls the target (well separated)
    assert (floor[["success_f", "success_logreg", "success_knn"]] >= 0.9).all().all()
    assert row.loc[tl.FLOOR, "energy_distance"] < row.loc["identity", "energy_distance"]


def test_evaluation_is_deterministic(run, frame):
    refs = tl.fit_references(run["x_train"], run["y_train"], seed=0)
    again = tl.evaluate(refs, run["x"], run["y"], TARGET, run["methods"], classify=run["classify"])
    pd.testing.assert_frame_equal(frame, again)


def test_metric_subset_and_no_f(run):
    out = tl.evaluate(run["refs"], run["x"], run["y"], TARGET, {"identity": run["x"]},
                      metrics=["success_f", "l2"], floor=False)
    assert list(out.columns) == ["method", "source", "n", "success_f", "l2"]
    assert out["success_f"].isna().all() and (out["l2"] == 0).all()


def test_bad_inputs_raise_clear_errors(run):
    refs, x, y = run["refs"], run["x"], run["y"]
    with pytest.raises(ValueError, match="valid names"):
        tl.evaluate(refs, x, y, TARGET, {"identity": x}, metrics=["nope"])
    with pytest.raises(ValueError, match="method 'bad'"):
        tl.evaluate(refs, x, y, TARGET, {"bad": x[:2]})
    with pytest.raises(ValueError, match="Unknown class 'Pancreas'"):
        tl.evaluate(refs, x, y, "Pancreas", {"identity": x})
    with pytest.raises(ValueError, match="without a training sample: Pancreas"):
        tl.fit_references(run["x_train"], run["y_train"], classes=["Liver", "Pancreas"])


def test_references_are_fitted_on_the_training_part(run):
    refs, x_train, y_train = run["refs"], run["x_train"], run["y_train"]
    assert refs.pca.n_components_ <= 50 and refs.z_train.shape == (len(x_train), refs.pca.n_components_)
    np.testing.assert_allclose(refs.mean("Lung"), x_train[y_train == "Lung"].mean(0), atol=1e-6)
    assert refs.classifiers["knn"].n_neighbors <= min(15, (y_train == "Lung").sum())
    t = refs.de_statistics(TARGET, ["Lung"])
    assert t.shape == (x_train.shape[1],) and np.isfinite(t).all()


def test_markdown_has_a_table_per_target_with_methods_as_rows(frame):
    md = tl.evaluation_markdown({TARGET: frame, "Lung": frame})
    assert md.startswith("# Evaluation")
    assert "\n## Liver\n" in md and "\n## Lung\n" in md
    header = "| method | n | " + " | ".join(tl.HEADLINE_METRICS) + " |"
    assert md.count(header) == 2
    for method in ("tspg", *tl.BASELINES, tl.FLOOR):
        assert f"\n| {method} | " in md
    assert "(lower is better)" in md and "–" in md  # NaN cells of the floor row


@pytest.mark.parametrize("module", ["_baselines", "_metrics", "_evaluate"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"tspg.tl.{module}"))
    assert result.failed == 0 and result.attempted > 0


def test_nearest_mean_calls_as_scikit_learns_nearest_centroid():
    from sklearn.neighbors import NearestCentroid

    from tspg.tl._evaluate import NearestMean

    rng = np.random.default_rng(3)
    classes = np.array(["a", "b", "c"], dtype=object)
    y = rng.choice(classes, 300)
    x = (rng.normal(size=(300, 40)) + (y == "b")[:, None] * 0.4 - (y == "c")[:, None] * 0.3).astype(np.float32)
    means = np.stack([x[y == c].mean(0, dtype=np.float64) for c in classes])
    new = rng.normal(size=(500, 40)).astype(np.float32) * 0.5
    calls = NearestMean(classes, means).predict(new)
    assert set(calls) == set(classes)  # the test data reach every class
    np.testing.assert_array_equal(calls, NearestCentroid().fit(x, y).predict(new))


def test_a_source_class_named_like_the_pooled_rows_keeps_one_pooled_row(run, caplog):
    # a class literally named "all" (e.g. lower-case leukaemia labels) is pooled with the rest, not a second "all"
    y = np.where(run["y"] == "Lung", tl.ALL, run["y"])
    refs = tl.fit_references(run["x_train"], np.where(run["y_train"] == "Lung", tl.ALL, run["y_train"]), seed=0)
    with caplog.at_level("WARNING", logger="tspg.tl._evaluate"):
        frame = tl.evaluate(refs, run["x"], y, TARGET, {"tspg": run["methods"]["tspg"]}, floor=False)
    assert "named 'all'" in caplog.text
    assert frame[["method", "source"]].values.tolist() == [["tspg", "Heart - Left Ventricle"], ["tspg", tl.ALL]]
    assert int(frame.loc[frame["source"] == tl.ALL, "n"].iloc[0]) == (y != TARGET).sum()
    assert isinstance(tl.behind_sentence(frame), str)


def test_no_held_out_target_sample_leaves_realism_unscored_and_success_scored(run, frame):
    keep = run["y"] != TARGET
    frame = tl.evaluate(run["refs"], run["x"][keep], run["y"][keep], TARGET, {"tspg": run["methods"]["tspg"][keep]},
                        classify=run["classify"], floor=False)
    row = frame[frame["source"] == tl.ALL].iloc[0]
    assert math.isnan(row["energy_distance"]) and math.isnan(row["c2st_auc"]) and math.isnan(row["mmd"])
    # the target's own samples are never scored, so success is that of the evaluation with them
    full = frame[(frame["method"] == "tspg") & (frame["source"] == tl.ALL)].iloc[0]
    assert row["n"] == keep.sum() == full["n"]
    assert row["success_f"] == full["success_f"] and row["success_logreg"] == full["success_logreg"]
