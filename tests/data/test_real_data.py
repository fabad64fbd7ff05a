"""The real data sets in ../shared/data load with the expected shapes, classes and values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tspg.data import load_dataset, prepare, read_gem, read_gmt, stratified_split

pytestmark = pytest.mark.slow  # reads the real data sets in ../shared/data


@pytest.fixture(scope="module")
def leukemia(shared_data):  # noqa: ANN001, ANN201
    folder = shared_data / "leukemia"
    return load_dataset(folder / "Leukemia_hgu95av2.trim.gct", folder / "Leukemia.cls")


@pytest.fixture(scope="module")
def pbmc_path(shared_data):  # noqa: ANN001, ANN201
    return shared_data / "pbmc68k" / "10x_pbmc68k_reduced.h5ad"


def _quiet_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    with warnings.catch_warnings():  # anndata's notes on the file's old layout must not reach the user
        warnings.simplefilter("error")
        return load_dataset(*args, **kwargs)


def test_leukemia_gct_and_cls(leukemia):
    ds = leukemia
    assert ds.gem.shape == (48, 9020)
    assert (ds.gem.dtypes == np.float32).all()
    assert ds.labels.value_counts().to_dict() == {"ALL": 24, "AML": 24}
    assert list(ds.gem.index[:2]) == ["ALL_1", "ALL_2"] and ds.gem.index[-1] == "AML_24"
    # the .cls labels follow the GCT's column order
    assert (ds.labels == [name.split("_")[0] for name in ds.gem.index]).all()
    assert ds.classes == ["ALL", "AML"]
    assert ds.genes[0] == "AADAC" and ds.gem.columns.is_unique
    assert ds.gem.loc["ALL_1", "AADAC"] == np.float32(-121.2)
    assert ds.gem.loc["ALL_18", "AADAC"] == np.float32(135.0)
    values = ds.gem.to_numpy()
    assert np.isfinite(values).all()
    assert (values < 0).sum() > 10_000  # MAS5-like values: many negatives


def test_leukemia_negative_values_scale_into_unit_range(leukemia):
    part = stratified_split(leukemia.labels, seed=0)
    assert (part == "test").sum() == 10 and (part == "val").sum() == 4
    prep = prepare(leukemia, leukemia.classes, part)
    train = prep.x[part.to_numpy() == "train"]
    assert train.min() == 0.0 and train.max() == pytest.approx(1.0)
    assert np.isfinite(prep.x).all()
    assert prep.scaler.data_min.min() < 0


def test_pbmc_h5ad_raw_with_obs_labels(pbmc_path):
    ds = _quiet_load(pbmc_path, labels_key="bulk_labels", use_raw=True)
    assert ds.gem.shape == (700, 765)
    assert (ds.gem.dtypes == np.float32).all()
    assert ds.labels.nunique() == 10
    counts = ds.labels.value_counts()
    assert counts.min() == 8 and counts.max() == 240 and counts.sum() == 700
    assert "CD14+ Monocyte" in ds.classes
    raw = ds.gem.to_numpy()
    assert raw.min() == 0.0 and 6.0 < raw.max() < 7.0  # log-normalised expression
    assert "labels" not in ds.sources and ds.sources["data"] == str(pbmc_path)


def test_pbmc_h5ad_x_is_scaled_and_differs_from_raw(pbmc_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = read_gem(pbmc_path)
        raw = read_gem(pbmc_path, use_raw=True)
    assert x.shape == (700, 765) and list(x.index) == list(raw.index)
    assert x.to_numpy().min() < 0  # .X holds z-scores


def test_hallmark_gmt(shared_data):
    sets = read_gmt(shared_data / "genesets" / "h.all.v7.0.symbols.gmt")
    assert len(sets) == 50
    assert all(name.startswith("HALLMARK_") for name in sets)
    assert list(sets)[0] == "HALLMARK_TNFA_SIGNALING_VIA_NFKB"
    assert sets["HALLMARK_TNFA_SIGNALING_VIA_NFKB"][:3] == ["JUNB", "CXCL2", "ATF3"]  # URL column skipped
    genes = set().union(*sets.values())
    assert len(genes) == 4384
    assert not any("://" in g for g in genes)


def test_leukemia_with_a_hallmark_set(shared_data):
    folder = shared_data / "leukemia"
    ds = load_dataset(folder / "Leukemia_hgu95av2.trim.gct", folder / "Leukemia.cls",
                      gene_sets=shared_data / "genesets" / "h.all.v7.0.symbols.gmt",
                      gene_set_names=["HALLMARK_HYPOXIA"])
    report = ds.gene_set_report["HALLMARK_HYPOXIA"]
    assert report["n_genes"] == 200
    assert ds.gem.shape == (48, 200 - report["n_missing"])
    assert 0 < report["n_missing"] < 200 and len(report["missing"]) == report["n_missing"]
    assert set(ds.genes).isdisjoint(report["missing"])
