"""End-to-end TSPG runs on the real data sets in ../shared/data (skipped where absent, required in CI).

The budgets are the defaults except for the maximum epochs and patience, cut so that the suite stays within
minutes; the full-default figures are measured by ``benchmarks/core_defaults.py``.
"""

from __future__ import annotations

import warnings

import pytest

from tspg import TSPG
from tspg.data import load_dataset
from tspg.train import ClassifierConfig, GeneratorConfig

pytestmark = pytest.mark.slow


def _fit_and_score(ds, target: str, epochs: int, patience: int) -> tuple[float, dict]:
    model = TSPG(ClassifierConfig(), GeneratorConfig(epochs=epochs, patience=patience), seed=0, progress=False)
    model.fit(ds, targets=[target])
    clf = model.classifier_metrics(ds)
    test = model.split[model.split == "test"].index
    result = model.perturb(ds.gem.loc[test], target, labels=ds.labels)
    return clf["accuracy"], result.metrics()


def test_leukemia_all_to_aml(shared_data):
    folder = shared_data / "leukemia"
    ds = load_dataset(folder / "Leukemia_hgu95av2.trim.gct", folder / "Leukemia.cls")
    acc, m = _fit_and_score(ds, "AML", epochs=30, patience=10)
    assert acc >= 0.9
    assert m["n_not_already_target"] >= 4
    assert m["perturbation_accuracy"] >= 0.8  # 4 of 5 held-out ALL samples at least


def test_pbmc68k_to_cd14_monocyte(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(shared_data / "pbmc68k" / "10x_pbmc68k_reduced.h5ad", labels_key="bulk_labels",
                          use_raw=True)
    acc, m = _fit_and_score(ds, "CD14+ Monocyte", epochs=40, patience=10)
    # 10 immune cell types whose labels overlap (T-cell subtypes): logistic regression reaches 0.83 in 5-fold CV
    assert acc >= 0.75
    # f is only 0.80 accurate here (issue 15 asks >= 0.95 where f is >= 0.9); with each cell moved by its own type's
    # map of the prior (--prior-assign label) this seed gives 0.991 (0.89 with the nearest centroid's map), the
    # quality benchmark's 5 seeds 0.996 ± 0.005 (docs/method.md, "The prior's class of each sample")
    assert m["perturbation_accuracy"] >= 0.95
    assert m["n_not_already_target"] >= 100
