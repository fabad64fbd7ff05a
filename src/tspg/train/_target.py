"""Samplers of the target class distribution N(mu_t, Sigma_t) used by the L_td loss.

Every model is factored once into ``r = mu + F z + d * e`` with ``z``, ``e`` standard normal, so a draw costs one
matrix product and no genes x genes matrix is ever formed:

- ``full``: the sample covariance, exactly: ``F = Xc^T / sqrt(n - 1)`` from the class's centred training
  matrix ``Xc`` (n x genes). Works for any n, including n < genes where a Cholesky factor does not exist.
  ``shrinkage`` > 0 draws from ``(1 - s) S + s diag(S)`` instead.
- ``diagonal``: per-gene variances only (``F`` empty, ``d`` = SDs).
- ``lowrank``: the top ``rank`` principal components of ``Xc`` plus the per-gene residual variance.
"""

from __future__ import annotations

import numpy as np
import torch

from tspg._options import TARGET_COV_MODELS, TargetCov


class TargetSampler:
    """Draw samples of a target class in scaled units, clipped to [0, 1].

    Parameters
    ----------
    x_target
        The target class's training samples (n x genes, scaled).
    model
        ``full``, ``diagonal`` or ``lowrank``.
    rank
        Components of the ``lowrank`` model.
    shrinkage
        For ``full``: weight of the diagonal in ``(1 - s) S + s diag(S)``.
    device
        Where the factors live.
    """

    def __init__(
        self,
        x_target: np.ndarray,
        model: TargetCov = "full",
        rank: int = 32,
        shrinkage: float = 0.0,
        device: str | torch.device = "cpu",
    ) -> None:
        if model not in TARGET_COV_MODELS:
            raise ValueError(f"unknown target covariance model '{model}'; choose one of {', '.join(TARGET_COV_MODELS)}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], not {shrinkage}")
        x = np.asarray(x_target, dtype=np.float64)
        n, g = x.shape
        if n < 2:
            raise ValueError("the target class needs at least 2 training samples to estimate its spread")
        mu = x.mean(axis=0)
        xc = x - mu
        var = xc.var(axis=0, ddof=1)
        if model == "full":
            factor = xc.T / np.sqrt(n - 1) * np.sqrt(1.0 - shrinkage)
            diag = np.sqrt(shrinkage * var)
        elif model == "diagonal":
            factor = np.zeros((g, 0))
            diag = np.sqrt(var)
        else:
            _, s, vt = np.linalg.svd(xc, full_matrices=False)
            k = int(min(rank, len(s)))
            factor = vt[:k].T * (s[:k] / np.sqrt(n - 1))
            explained = (factor**2).sum(axis=1)
            diag = np.sqrt(np.clip(var - explained, 0.0, None))
        self.model = model
        self.mu = torch.as_tensor(mu, dtype=torch.float32, device=device)
        self.factor = torch.as_tensor(factor, dtype=torch.float32, device=device)
        self.diag = torch.as_tensor(diag, dtype=torch.float32, device=device)
        self.has_diag = bool(np.any(diag > 0))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` draws (n x genes), clipped to [0, 1]."""
        dev = self.mu.device
        r = self.mu.expand(n, -1)
        if self.factor.shape[1]:
            z = torch.randn(n, self.factor.shape[1], generator=generator, device=dev)
            r = r + z @ self.factor.T
        if self.has_diag:
            e = torch.randn(n, self.mu.shape[0], generator=generator, device=dev)
            r = r + e * self.diag
        return torch.clamp(r, 0.0, 1.0)

    def covariance(self) -> torch.Tensor:
        """The implied covariance matrix (genes x genes); for tests on small data only."""
        return self.factor @ self.factor.T + torch.diag(self.diag**2)
