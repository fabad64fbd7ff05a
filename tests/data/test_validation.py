"""load_dataset: every problem with the inputs is one InputError that names it; imputation and scaling."""

from __future__ import annotations

import hashlib
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from tspg.data import (
    Dataset,
    InputError,
    MinMaxScaler,
    in_gene_order,
    load_dataset,
    prepare,
    stratified_split,
)


@pytest.fixture
def written(files, labelled):  # noqa: ANN001, ANN201
    """The ``labelled`` GEM (A 5, B 4, C 3 samples x 5 genes) and its labels on disk."""
    gem, labels = labelled
    return files.gem_tsv(gem), files.labels_tsv(labels), gem, labels


def test_valid_dataset(written):
    gem_path, labels_path, gem, labels = written
    ds = load_dataset(gem_path, labels_path)
    assert isinstance(ds, Dataset)
    pd.testing.assert_frame_equal(ds.gem, gem)
    assert ds.labels.to_dict() == labels.to_dict() and list(ds.labels.index) == list(gem.index)
    assert ds.classes == ["A", "B", "C"] and ds.genes == ["G0", "G1", "G2", "G3", "G4"]
    assert ds.sources["data"] == str(gem_path) and ds.sources["labels"] == str(labels_path)
    assert ds.sources["sha256"] == {
        "data": hashlib.sha256(gem_path.read_bytes()).hexdigest(),
        "labels": hashlib.sha256(labels_path.read_bytes()).hexdigest(),
    }
    assert "sha256" not in load_dataset(gem_path, labels_path, hash_inputs=False).sources


def test_labels_in_another_order_follow_the_gem(files, labelled):
    gem, labels = labelled
    shuffled = labels.iloc[::-1]
    ds = load_dataset(files.gem_tsv(gem), files.labels_tsv(shuffled, header=True))
    assert list(ds.labels.index) == list(gem.index)
    assert ds.labels.to_dict() == labels.to_dict()


def test_cls_labels_follow_gem_columns(files, labelled):
    gem, labels = labelled
    cls = files.text("labels.cls", f"{len(labels)} 3 1\n# A B C\n" + " ".join(labels) + "\n")
    ds = load_dataset(files.gem_tsv(gem), cls)
    assert ds.labels.to_dict() == labels.to_dict()


# ---------------------------------------------------------------------------------------- sample matching
def test_no_shared_samples(files, labelled):
    gem, labels = labelled
    other = pd.Series(labels.to_numpy(), index=[f"X{i}" for i in range(len(labels))])
    with pytest.raises(InputError) as exc:
        load_dataset(files.gem_tsv(gem), files.labels_tsv(other))
    msg = str(exc.value)
    assert msg.startswith("The labels and the GEM share no sample ids")
    assert "GEM: 'S000', 'S001', 'S002'" in msg and "labels: 'X0', 'X1', 'X2'" in msg and "transpose=True" in msg


def test_no_shared_samples_because_gem_is_transposed(files, labelled):
    gem, labels = labelled
    with pytest.raises(InputError, match=r"share no sample ids .* pass transpose=True"):
        load_dataset(files.gem_tsv(gem.T), files.labels_tsv(labels))
    assert load_dataset(files.path("gem.tsv"), files.path("labels.tsv"), transpose=True).gem.shape == (12, 5)


def test_some_samples_unlabelled_and_some_labels_orphaned(files, labelled_factory, caplog):
    gem, labels = labelled_factory({"A": 6, "B": 5, "C": 5})
    partial = pd.concat([labels.iloc[2:], pd.Series(["A", "B"], index=["X1", "X2"])])  # drops S000, S001
    gem_path, labels_path = files.gem_tsv(gem), files.labels_tsv(partial)
    with pytest.raises(InputError) as exc:
        load_dataset(gem_path, labels_path)
    msg = str(exc.value)
    assert "2 of 16 GEM samples have no label (e.g. 'S000', 'S001')" in msg
    assert "2 of 16 labelled samples are not in the GEM (e.g. 'X1', 'X2')" in msg
    assert "pass allow_missing_labels=True to use only the 14 shared samples" in msg

    with caplog.at_level(logging.WARNING, logger="tspg"):
        ds = load_dataset(gem_path, labels_path, allow_missing_labels=True)
    assert list(ds.gem.index) == list(gem.index[2:]) and list(ds.labels.index) == list(gem.index[2:])
    assert ds.labels.to_dict() == labels.iloc[2:].to_dict()
    np.testing.assert_array_equal(ds.gem.to_numpy(), gem.iloc[2:].to_numpy())
    assert "using the 14 shared samples" in caplog.text


def test_only_unlabelled_gem_samples(files, labelled):
    gem, labels = labelled
    with pytest.raises(InputError, match=r"^1 of 12 GEM samples have no label \(e\.g\. 'S011'\); fix"):
        load_dataset(files.gem_tsv(gem), files.labels_tsv(labels.iloc[:-1]))


# -------------------------------------------------------------------------------------------- GEM content
def test_duplicated_sample_names(files, labelled):
    gem, labels = labelled
    dup = gem.rename(index={"S001": "S000"})
    with pytest.raises(InputError, match=r"1 duplicated sample name\(s\), e\.g\. S000"):
        load_dataset(files.gem_tsv(dup), files.labels_tsv(labels))


def test_duplicated_gene_names(files, labelled):
    gem, labels = labelled
    p = files.path("gem.tsv")
    gem.to_csv(p, sep="\t", index_label="sample", header=["G0", "G1", "G0", "G3", "G1"])
    with pytest.raises(InputError, match=r"2 duplicated gene name\(s\), e\.g\. G0, G1"):
        load_dataset(p, files.labels_tsv(labels))


def test_non_numeric_cell(files, labelled):
    gem, labels = labelled
    bad = gem.astype(object)
    bad.loc["S004", "G3"] = "1,5"
    with pytest.raises(InputError, match=r"non-numeric value '1,5' at sample 'S004', gene 'G3'"):
        load_dataset(files.gem_tsv(bad), files.labels_tsv(labels))


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_missing_or_infinite_values_stop_by_default(bad_value, files, labelled):
    gem, labels = labelled
    gem = gem.copy()
    gem.loc["S003", "G2"] = bad_value
    gem.loc["S007", "G4"] = bad_value
    with pytest.raises(InputError) as exc:
        load_dataset(files.gem_tsv(gem), files.labels_tsv(labels))
    msg = str(exc.value)
    assert "2 missing or infinite value(s) (e.g. sample 'S003', gene 'G2')" in msg
    assert "impute=mean|median|zero|drop-genes" in msg


def test_unknown_impute_method(written):
    with pytest.raises(InputError, match=r"Unknown impute 'avg'; choose one of none, zero, mean, median"):
        load_dataset(written[0], written[1], impute="avg")


# ------------------------------------------------------------------------------------------------ imputing
@pytest.fixture
def with_gaps(files, labelled):  # noqa: ANN001, ANN201
    """The labelled GEM with NaN/inf cells in G1 (train and test samples) and an inf in G3; and its split.

    The test samples get huge values in G1 so that statistics over all samples would differ clearly from the
    training part's.
    """
    gem, labels = labelled
    gem = gem.copy()
    part = stratified_split(labels, seed=0)
    train = part.index[part == "train"]
    test = part.index[part == "test"]
    gem.loc[test, "G1"] = 1000.0
    gaps = {(train[0], "G1"): np.nan, (test[0], "G1"): np.nan, (train[1], "G3"): np.inf}
    for (s, g), v in gaps.items():
        gem.loc[s, g] = v
    return files.gem_tsv(gem), files.labels_tsv(labels), gem, part, gaps


@pytest.mark.parametrize("method", ["mean", "median", "zero"])
def test_impute_fills_with_training_statistics(method, with_gaps, caplog):
    gem_path, labels_path, gem, part, gaps = with_gaps
    with caplog.at_level(logging.WARNING, logger="tspg"):
        ds = load_dataset(gem_path, labels_path, impute=method)
    assert "3 missing value(s) will be filled with the training part's " + method in caplog.text
    assert ds.gem.shape == (12, 5)
    assert np.isnan(ds.gem.to_numpy()).sum() == 3 and np.isfinite(ds.gem.to_numpy()).sum() == 57  # inf -> NaN

    prep = prepare(ds, ds.classes, part, impute=method)
    train = gem.loc[part == "train"].replace([np.inf, -np.inf], np.nan).to_numpy(dtype=np.float64)
    if method == "mean":
        expected = np.nanmean(train, axis=0)
        everything = np.nanmean(gem.replace([np.inf], np.nan).to_numpy(dtype=np.float64), axis=0)
        assert abs(everything[1] - expected[1]) > 100  # the test samples' 1000s are not in the statistics
    elif method == "median":
        expected = np.nanmedian(train, axis=0)
    else:
        expected = np.zeros(5)
    np.testing.assert_allclose(prep.fill, expected, rtol=1e-6, atol=1e-6)
    assert np.isfinite(prep.x).all()
    filled = prep.scaler.inverse_transform(prep.x)
    for (s, g), _ in gaps.items():
        i, j = gem.index.get_loc(s), gem.columns.get_loc(g)
        assert filled[i, j] == pytest.approx(expected[j], rel=1e-5, abs=1e-5)
    # the scaler is fitted after filling, on the training part only
    x_train = prep.x[part.to_numpy() == "train"]
    np.testing.assert_allclose(x_train.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(x_train.max(axis=0), 1, atol=1e-6)
    assert prep.x[:, 1].max() > 100  # test samples at 1000 lie far outside the training range


def test_impute_drop_genes(with_gaps, caplog):
    gem_path, labels_path, gem, part, _ = with_gaps
    with caplog.at_level(logging.WARNING, logger="tspg"):
        ds = load_dataset(gem_path, labels_path, impute="drop-genes")
    assert ds.genes == ["G0", "G2", "G4"]
    assert "dropping 2 gene(s) with missing values" in caplog.text
    np.testing.assert_array_equal(ds.gem.to_numpy(), gem[["G0", "G2", "G4"]].to_numpy())
    prep = prepare(ds, ds.classes, part, impute="drop-genes")
    assert np.isfinite(prep.x).all() and prep.x.shape == (12, 3)


def test_impute_drop_genes_when_every_gene_has_a_gap(files, labelled):
    gem, labels = labelled
    gem = gem.copy()
    for j, g in enumerate(gem.columns):
        gem.iloc[j, gem.columns.get_loc(g)] = np.nan
    with pytest.raises(InputError, match=r"every gene has a missing value; impute=drop-genes would drop"):
        load_dataset(files.gem_tsv(gem), files.labels_tsv(labels), impute="drop-genes")


def test_impute_gene_missing_in_every_training_sample_gets_zero(labelled):
    gem, labels = labelled
    part = stratified_split(labels, seed=0)
    gem = gem.copy()
    gem.loc[part == "train", "G2"] = np.nan
    prep = prepare(Dataset(gem, labels), ["A", "B", "C"], part, impute="mean")
    assert prep.fill[2] == 0 and np.isfinite(prep.x).all()


# ------------------------------------------------------------------------------------------------- classes
def test_class_with_fewer_than_three_samples(files, labelled_factory):
    gem, labels = labelled_factory({"A": 5, "B": 2, "C": 1})
    with pytest.raises(InputError) as exc:
        load_dataset(files.gem_tsv(gem), files.labels_tsv(labels))
    msg = str(exc.value)
    assert msg.startswith("2 class(es) have fewer than 3 samples")
    assert "'B' (2)" in msg and "'C' (1)" in msg and "'A'" not in msg


def test_a_single_class(files, labelled_factory):
    gem, labels = labelled_factory({"A": 6})
    with pytest.raises(InputError, match=r"Only one class \('A'\) in the labels; TSPG needs at least two"):
        load_dataset(files.gem_tsv(gem), files.labels_tsv(labels))


def test_unknown_target_lists_the_valid_classes(written):
    ds = load_dataset(written[0], written[1])
    ds.check_targets(["A", "C"])
    with pytest.raises(InputError, match=r"^Unknown target class 'a'; valid classes: A, B, C\.$"):
        ds.check_targets(["A", "a"])


# ----------------------------------------------------------------------------------------- option errors
def test_label_option_errors(written, tmp_path):
    gem_path, labels_path, *_ = written
    with pytest.raises(InputError, match=r"No labels given: pass labels=FILE, or labels_key=COLUMN"):
        load_dataset(gem_path)
    with pytest.raises(InputError, match=r"either labels or labels_key, not both"):
        load_dataset(gem_path, labels_path, labels_key="cell_type")
    with pytest.raises(InputError, match=r"labels_key reads an \.obs column and needs an \.h5ad GEM"):
        load_dataset(gem_path, labels_key="cell_type")
    with pytest.raises(InputError, match=r"gone\.h5ad: no such file"):
        load_dataset(tmp_path / "gone.h5ad", labels_key="cell_type")
    with pytest.raises(InputError, match=r"gone\.tsv: no such file"):
        load_dataset(gem_path, tmp_path / "gone.tsv")


def test_h5ad_with_labels_key(labelled, tmp_path):
    anndata = pytest.importorskip("anndata")
    gem, labels = labelled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = pd.DataFrame({"cell_type": labels.to_numpy()}, index=gem.index)
        a = anndata.AnnData(X=gem.to_numpy(), obs=obs)
        a.var_names = list(gem.columns)
        a.layers["double"] = gem.to_numpy() * 2
        a.write_h5ad(tmp_path / "d.h5ad")
    ds = load_dataset(tmp_path / "d.h5ad", labels_key="cell_type", layer="double")
    np.testing.assert_array_equal(ds.gem.to_numpy(), gem.to_numpy() * 2)
    assert ds.labels.to_dict() == labels.to_dict() and ds.sources["data"] == str(tmp_path / "d.h5ad")
    with pytest.raises(InputError, match=r"no \.obs column 'celltype'; columns present: cell_type"):
        load_dataset(tmp_path / "d.h5ad", labels_key="celltype")
    with pytest.raises(InputError, match=r"transpose does not apply to \.h5ad"):
        load_dataset(tmp_path / "d.h5ad", labels_key="cell_type", transpose=True)


# ------------------------------------------------------------------------------------------------- scaling
def test_constant_gene_scales_without_nan():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]], dtype=np.float32)
    scaler = MinMaxScaler.fit(x)
    np.testing.assert_array_equal(scaler.data_range, [2.0, 1.0])
    scaled = scaler.transform(x)
    assert not np.isnan(scaled).any()
    np.testing.assert_array_equal(scaled[:, 1], [0, 0, 0])
    np.testing.assert_array_equal(scaler.transform(np.array([[1.0, 7.5]], dtype=np.float32)), [[0.0, 2.5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_leaves_its_input_alone_and_gives_the_plain_formula(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (50, 7)).astype(dtype)
    scaler = MinMaxScaler.fit(x)
    before = x.copy()
    scaled = scaler.transform(x)
    np.testing.assert_array_equal(x, before)  # the in-place division works on a new array
    np.testing.assert_array_equal(scaled, ((before - scaler.data_min) / scaler.data_range).astype(np.float32))
    assert scaled.dtype == np.float32


def test_in_gene_order_copies_only_when_it_must():
    gem = pd.DataFrame(np.arange(12, dtype=np.float32).reshape(3, 4), columns=["a", "b", "c", "d"])
    assert in_gene_order(gem, ["a", "b", "c", "d"]) is gem  # the model's genes in its order: no copy
    picked = in_gene_order(gem, ["c", "a"])
    assert list(picked.columns) == ["c", "a"]
    np.testing.assert_array_equal(picked.to_numpy(), gem[["c", "a"]].to_numpy())
    with pytest.raises(InputError, match="lacks 1 of the model's 2 genes"):
        in_gene_order(gem, ["a", "z"])


def test_negative_values_scale_into_unit_range_on_training_data(tiny_gem):
    x = tiny_gem.to_numpy()
    scaler = MinMaxScaler.fit(x)
    scaled = scaler.transform(x)
    assert scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_array_equal(scaled.min(axis=0), [0, 0, 0, 0])
    np.testing.assert_array_equal(scaled.max(axis=0), [1, 1, 0, 1])  # CONST stays at 0
    # GATA1 runs from -2.25 to 4.0: 0.5 sits at (0.5 + 2.25) / 6.25
    assert scaled[1, 1] == pytest.approx(0.44)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), x, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(scaler.inverse_transform_delta(np.full((1, 4), 0.5, np.float32)),
                               [[2.375, 3.125, 0.5, 512.5]])
