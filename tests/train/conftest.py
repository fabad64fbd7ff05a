"""Fixtures of the training tests."""

import numpy as np
import pytest

from tspg.data import make_atlas


@pytest.fixture(scope="module")
def atlas():
    """A 4-class atlas (120 genes, 30 samples per class) min-max scaled: samples x genes, class indices, names."""
    a = make_atlas(n_classes=4, n_genes=120, samples_per_class=30, n_markers=10, seed=7)
    x = a.gem.to_numpy(np.float32)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    names = sorted(a.labels.unique())
    y = np.searchsorted(names, a.labels.to_numpy())
    return x, y, names
