import numpy as np
import pytest
import torch

from tspg.train import TargetSampler


@pytest.fixture
def x_small():
    rng = np.random.default_rng(0)
    # 6 samples x 40 genes: fewer samples than genes (a Cholesky factor would not exist)
    return rng.uniform(0.2, 0.8, (6, 40))


def test_full_model_has_exactly_the_sample_covariance_with_n_below_genes(x_small):
    s = TargetSampler(x_small, "full")
    np.testing.assert_allclose(s.covariance().numpy(), np.cov(x_small, rowvar=False), atol=1e-6)
    np.testing.assert_allclose(s.mu.numpy(), x_small.mean(0), atol=1e-6)
    assert s.factor.shape == (40, 6)  # genes x n, no genes x genes matrix


def test_full_draws_match_mean_and_covariance():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.3, 0.7, (30, 5))
    s = TargetSampler(x, "full")
    draws = s.sample(200_000, generator=torch.Generator().manual_seed(0)).numpy().astype(np.float64)
    np.testing.assert_allclose(draws.mean(0), x.mean(0), atol=2e-3)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), np.cov(x, rowvar=False), atol=2e-3)


def test_draws_are_clipped_to_unit_interval():
    x = np.array([[0.0, 1.0], [0.1, 0.9], [0.0, 1.0], [0.2, 0.95]])
    r = TargetSampler(x, "diagonal").sample(1000, generator=torch.Generator().manual_seed(0))
    assert float(r.min()) >= 0.0 and float(r.max()) <= 1.0


def test_diagonal_and_shrinkage_and_lowrank(x_small):
    var = np.var(x_small, axis=0, ddof=1)
    cov = np.cov(x_small, rowvar=False)
    np.testing.assert_allclose(TargetSampler(x_small, "diagonal").covariance().numpy(), np.diag(var), atol=1e-6)
    shrunk = TargetSampler(x_small, "full", shrinkage=0.3).covariance().numpy()
    np.testing.assert_allclose(shrunk, 0.7 * cov + 0.3 * np.diag(var), atol=1e-6)
    # rank >= n - 1 captures the whole sample covariance
    np.testing.assert_allclose(TargetSampler(x_small, "lowrank", rank=10).covariance().numpy(), cov, atol=1e-6)
    # a lower rank keeps the per-gene variances exact (diagonal residual)
    low = TargetSampler(x_small, "lowrank", rank=2).covariance().numpy()
    np.testing.assert_allclose(np.diag(low), var, atol=1e-6)


def test_bad_arguments():
    x = np.random.default_rng(0).random((5, 3))
    with pytest.raises(ValueError, match="full, diagonal, lowrank"):
        TargetSampler(x, "cholesky")
    with pytest.raises(ValueError, match="at least 2"):
        TargetSampler(x[:1], "full")
