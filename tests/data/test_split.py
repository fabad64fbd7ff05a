"""The stratified train/val/test split and the scaler fitted on the training part only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tspg.data import Dataset, InputError, prepare, stratified_split

SIZES = {"A": 30, "B": 12, "C": 7, "D": 3}


@pytest.fixture
def labels(labelled_factory) -> pd.Series:  # noqa: ANN001
    return labelled_factory(SIZES)[1]


def _counts(labels: pd.Series, part: pd.Series) -> dict[str, dict[str, int]]:
    table = pd.crosstab(labels, part)
    return {c: {p: int(table.loc[c].get(p, 0)) for p in ("train", "val", "test")} for c in table.index}


def test_split_sizes_per_class(labels):
    part = stratified_split(labels, test_size=0.2, val_size=0.1, seed=0)
    assert part.name == "part" and list(part.index) == list(labels.index)
    assert set(part) == {"train", "val", "test"}
    # per class: test = round(0.2 n) (at least 1), val = round(0.1 * rest) if 2 training samples remain
    assert _counts(labels, part) == {
        "A": {"train": 22, "val": 2, "test": 6},
        "B": {"train": 9, "val": 1, "test": 2},
        "C": {"train": 5, "val": 1, "test": 1},
        "D": {"train": 2, "val": 0, "test": 1},
    }


def test_split_is_deterministic_per_seed(labels):
    a = stratified_split(labels, seed=3)
    b = stratified_split(labels, seed=3)
    pd.testing.assert_series_equal(a, b)
    c = stratified_split(labels, seed=4)
    assert not a.equals(c)
    assert _counts(labels, a) == _counts(labels, c)  # same sizes, other samples


def test_every_class_in_test_and_val_from_training_part(labels):
    for seed in range(5):
        part = stratified_split(labels, test_size=0.1, val_size=0.3, seed=seed)
        assert set(labels[part == "test"]) == set(SIZES)
        assert set(labels[part == "train"]) == set(SIZES)
        # one part per sample: no sample is in two parts, none is left out
        assert part.index.is_unique and len(part) == len(labels) and part.isin(["train", "val", "test"]).all()
        # val is carved from what test leaves: with val_size 0 the test part is the same
        no_val = stratified_split(labels, test_size=0.1, val_size=0.0, seed=seed)
        assert (no_val == "test").equals(part == "test")
        assert set(part.index[part == "val"]) <= set(no_val.index[no_val == "train"])


def test_large_test_size_keeps_two_training_samples_per_class(labels):
    part = stratified_split(labels, test_size=0.8, val_size=0.5, seed=1)
    assert _counts(labels, part) == {
        "A": {"train": 3, "val": 3, "test": 24},
        "B": {"train": 2, "val": 0, "test": 10},  # round(9.6) = 10 leaves 2: val would leave 1, so no val
        "C": {"train": 2, "val": 0, "test": 5},  # round(5.6) = 6 would leave 1: capped at n - 2
        "D": {"train": 2, "val": 0, "test": 1},  # round(2.4) = 2 would leave 1: capped at n - 2
    }


@pytest.mark.parametrize(("test_size", "val_size", "keyword"),
                         [(0.0, 0.1, "test_size"), (1.0, 0.1, "test_size"), (0.2, 1.0, "val_size"),
                          (0.2, -0.1, "val_size")])
def test_split_fraction_errors(labels, test_size, val_size, keyword):
    with pytest.raises(InputError, match=keyword):
        stratified_split(labels, test_size=test_size, val_size=val_size)


def test_scaler_is_fitted_on_the_training_part_only(labelled_factory):
    gem, labels = labelled_factory({"A": 10, "B": 10}, n_genes=3)
    part = stratified_split(labels, seed=0)
    gem = gem.copy()
    test = part.index[part == "test"]
    gem.loc[test[0], "G0"] = 100.0  # far above every training value (training values are in [-3, 3])
    gem.loc[test[1], "G1"] = -100.0
    prep = prepare(Dataset(gem, labels), ["A", "B"], part)
    is_train = part.to_numpy() == "train"
    train = gem.to_numpy()[is_train]
    np.testing.assert_allclose(prep.scaler.data_min, train.min(axis=0))
    np.testing.assert_allclose(prep.scaler.data_range, train.max(axis=0) - train.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(prep.x[is_train].min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(prep.x[is_train].max(axis=0), 1, atol=1e-6)
    i0, i1 = gem.index.get_loc(test[0]), gem.index.get_loc(test[1])
    assert prep.x[i0, 0] > 10 and prep.x[i1, 1] < -10  # held-out samples may fall outside [0, 1]
    assert prep.x[i0, 0] == pytest.approx((100 - train[:, 0].min()) / np.ptp(train[:, 0]), rel=1e-5)
    assert prep.y.tolist() == [0 if c == "A" else 1 for c in labels]
    assert prep.part.tolist() == part.tolist()
    assert np.isnan(prep.fill).all()  # no imputation asked for
