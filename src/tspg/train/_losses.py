"""The TSPG generator and discriminator losses. Every term is a batch mean of a per-sample quantity."""

from __future__ import annotations

import math
import warnings

import torch


def target_margins(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Each row's margin ``z_t - max_{i!=t} z_i`` of the target's logit (positive: called the target)."""
    others = logits.clone()
    others[:, target] = float("-inf")
    return logits[:, target] - others.max(dim=1).values


def adversarial_loss(logits: torch.Tensor, target: int, kappa: float = 0.0) -> torch.Tensor:
    """Carlini-Wagner targeted loss on logits: mean of ``max(max_{i!=t} z_i - z_t, -kappa)``."""
    return torch.clamp(-target_margins(logits, target), min=-kappa).mean()


def norm_loss(perturbation: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each sample's L2 norm of G(x)."""
    return perturbation.norm(dim=1).mean()


def target_distance_loss(x_adv: torch.Tensor, r_target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each sample's mean absolute difference to a draw from the target class."""
    return (x_adv - r_target).abs().mean(dim=1).mean()


def gan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the generator: mean of ``(D(x_adv) - 1)^2``."""
    return ((d_fake - 1.0) ** 2).mean()


def gan_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator: ``((D(x) - 1)^2 + D(x_adv)^2) / 2``, batch means."""
    return 0.5 * (((d_real - 1.0) ** 2).mean() + (d_fake**2).mean())


# ------------------------------------------------------------------ distribution-level target terms
# Each compares the batch of x_adv with a batch of real target training samples as two distributions, so its
# minimiser is "x_adv distributed as the target class", not "every x_adv at the target's per-gene median" as
# the paper's L1 distance to one independent draw per sample (see docs/method.md). Distances are computed after
# subtracting a centre (the target's training mean): squared distances by the matrix-product expansion then lose
# no precision to large norms in float32.


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (a x b), clamped at 0."""
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_min(0.0)


class _CrossAndSelfSqDists(torch.autograd.Function):
    """``(_sq_dists(a, y), _sq_dists(a, a))`` with fewer, larger matrix products (``y`` takes no gradient).

    Forward: one product ``a [y; a]^T`` for both Gram matrices (instead of two). Backward: the gradient of ``a``
    through both, ``2 a (rowsum(g_xy) + rowsum(s)) - 2 [g_xy | s] [y; a]`` with ``s = g_xx + g_xx^T``, is one
    product with an inner size of ``len(y) + len(a)`` (autograd takes three of the smaller ones). Entries clamped
    at 0 pass no gradient, as in :func:`_sq_dists`. The training step's energy term is about 8% of a step's
    arithmetic at batch 128; these products ran at about half the speed of the larger ones (AMD EPYC, 2 cores).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        both = torch.cat([y, a])
        gram = a @ both.T
        na, ny = (a * a).sum(1), (y * y).sum(1)
        m = len(y)
        d_xy = na[:, None] + ny[None, :] - 2.0 * gram[:, :m]
        d_xx = na[:, None] + na[None, :] - 2.0 * gram[:, m:]
        ctx.save_for_backward(both, d_xy >= 0, d_xx >= 0)
        return d_xy.clamp_min(0.0), d_xx.clamp_min(0.0)

    @staticmethod
    def backward(ctx, g_xy: torch.Tensor, g_xx: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        both, keep_xy, keep_xx = ctx.saved_tensors
        a = both[keep_xy.shape[1]:]
        g_xy = g_xy * keep_xy
        g_xx = g_xx * keep_xx
        s = g_xx + g_xx.T
        grad = 2.0 * a * (g_xy.sum(1) + s.sum(1))[:, None] - 2.0 * (torch.cat([g_xy, s], 1) @ both)
        return grad, None


def _cross_and_self_sq_dists(a: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(_sq_dists(a, y), _sq_dists(a, a))``; through :class:`_CrossAndSelfSqDists` when ``y`` needs no gradient."""
    if y.requires_grad:
        return _sq_dists(a, y), _sq_dists(a, a)
    return _CrossAndSelfSqDists.apply(a, y)


def _off_diagonal_mean(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    if n < 2:
        return m.new_zeros(())
    return (m.sum() - m.diagonal().sum()) / (n * (n - 1))


def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    # sqrt with a finite gradient at 0 (identical points): the gradient of |a - b| there is taken as 0
    pos = d2 > 0
    return torch.where(pos, d2.clamp_min(1e-30).sqrt(), d2.new_zeros(()))


def energy_loss(x_adv: torch.Tensor, y: torch.Tensor, center: torch.Tensor | None = None,
                unbiased: bool = True) -> torch.Tensor:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` between two batches (Euclidean).

    By default U-statistics (the pairs of a sample with itself are left out), so its expectation over random
    batches is the population energy distance, which is 0 only when ``x_adv`` follows the target distribution;
    the V-statistic's zero diagonal would reward collapse. ``unbiased=False`` gives the V-statistic of
    :func:`tspg.tl.energy_distance` (used to score checkpoints, like the evaluation).

    Parameters
    ----------
    x_adv
        Perturbed samples (batch x genes).
    y
        Real target samples (m x genes).
    center
        Subtracted from both before distances are computed (for precision; does not change the value).
    """
    if center is not None:
        x_adv, y = x_adv - center, y - center
    within = _off_diagonal_mean if unbiased else torch.mean
    d_xy, d_xx = _cross_and_self_sq_dists(x_adv, y)
    xy = _safe_sqrt(d_xy).mean()
    xx = within(_safe_sqrt(d_xx))
    yy = within(_safe_sqrt(_sq_dists(y, y)))
    return 2.0 * xy - xx - yy


class EnergyGain:
    """Samples moved one way (``before``) and their distances to reference samples ``y``, to score other movings.

    :meth:`z` gives :func:`energy_gain_z` of another moving of the same samples against this one. The distances of
    ``before`` and the bootstrap resamples are computed once, so scoring every epoch against one fixed moving (the
    prior alone) costs only the new moving's distances.

    Parameters
    ----------
    before, y, center, n_boot, seed
        As :func:`energy_gain_z`.
    """

    def __init__(self, before: torch.Tensor, y: torch.Tensor, center: torch.Tensor | None = None, n_boot: int = 200,
                 seed: int = 0) -> None:
        if n_boot < 2:
            raise ValueError(f"energy_gain_z: n_boot must be at least 2, not {n_boot}")
        self.center, self.y = center, y if center is None else y - center
        self.finite = all(bool(torch.isfinite(t).all()) for t in (before, y))
        self.d_xy, self.d_xx = self._distances(before)
        n, m = self.d_xy.shape
        gen = torch.Generator().manual_seed(seed)

        def counts(k: int) -> torch.Tensor:  # bootstrap multiplicities of k rows, n_boot at once
            idx = torch.randint(0, k, (n_boot, k), generator=gen)
            ones = torch.ones(n_boot, k, dtype=torch.float64)
            return torch.zeros(n_boot, k, dtype=torch.float64).scatter_add_(1, idx, ones)

        self.wx, self.wy = counts(n), counts(m)

    def _distances(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances of the rows of ``a`` to ``y`` and among themselves (a row to itself: 0, not float32 noise)."""
        if self.center is not None:
            a = a - self.center
        within = _safe_sqrt(_sq_dists(a, a)).fill_diagonal_(0.0)
        return _safe_sqrt(_sq_dists(a, self.y)), within

    def gain(self, after: torch.Tensor) -> tuple[float, float]:
        """The change of the energy distance from ``before`` to ``after`` and its bootstrap standard error.

        NaN for both where a value is not finite. :meth:`z` is their ratio; changes of several independent
        comparisons combine as ``sum(change) / sqrt(sum(se^2))``.
        """
        if not (self.finite and bool(torch.isfinite(after).all())):
            return math.nan, math.nan
        a_xy, a_xx = self._distances(after)
        d_xy, d_xx = (a_xy - self.d_xy).cpu().double(), (a_xx - self.d_xx).cpu().double()
        n, m = d_xy.shape
        observed = float(2.0 * d_xy.mean() - d_xx.mean())
        wx, wy = self.wx, self.wy
        boot = 2.0 * ((wx @ d_xy) * wy).sum(1) / (n * m) - ((wx @ d_xx) * wx).sum(1) / (n * n)
        return observed, float(boot.std())

    def z(self, after: torch.Tensor) -> float:
        """:func:`energy_gain_z` of ``after`` (the same samples, moved another way) against ``before``."""
        observed, se = self.gain(after)
        if math.isnan(observed):
            return math.nan
        return observed / se if se > 0 else 0.0


def energy_gain_z(before: torch.Tensor, after: torch.Tensor, y: torch.Tensor, center: torch.Tensor | None = None,
                  n_boot: int = 200, seed: int = 0) -> float:
    """How many standard errors lower the energy distance to ``y`` is for ``after`` than for ``before``.

    ``before`` and ``after`` are the same samples moved two ways (row ``i`` of each is one sample). The statistic
    is the change of the V-statistic energy distance (:func:`energy_loss` with ``unbiased=False``), ``E(after, y)
    - E(before, y)``, over its standard error from a paired bootstrap: the samples (rows of both at once) and the
    rows of ``y`` are resampled with replacement ``n_boot`` times; the ``E|Y - Y'|`` term is the same for both and
    cancels. Negative: ``after`` is closer to ``y``; -2 or lower is a gain beyond the noise of these few samples.
    The plug-in bootstrap underestimates the spread over very few rows of ``y`` (by a factor ``(m - 1) / m`` in
    the variance of their part), so with 3 of them a z of -2 is nearer -1.6 in truth. :class:`EnergyGain` scores
    many movings against one ``before``.

    Parameters
    ----------
    before, after
        Two movings of the same samples (n x genes).
    y
        Reference samples (m x genes).
    center
        Subtracted from all three first (for precision; does not change the value).
    n_boot
        Bootstrap resamples (at least 2).
    seed
        Seed of the resampling (a local generator; the global random state is not touched).

    Returns
    -------
    The z statistic; 0 where the bootstrap shows no spread (identical movings), NaN where a value is not finite.
    """
    return EnergyGain(before, y, center, n_boot, seed).z(after)


#: Multiples of the target's median pairwise distance used as the RBF bandwidths of :func:`mmd_loss`.
MMD_BANDWIDTH_SCALES = (0.5, 1.0, 2.0)


def median_bandwidth(y: torch.Tensor, center: torch.Tensor | None = None, max_samples: int = 1000) -> torch.Tensor:
    """The median pairwise Euclidean distance of the rows of ``y`` (the first ``max_samples``); 1 if it is 0."""
    y = y[:max_samples]
    if center is not None:
        y = y - center
    d = _safe_sqrt(_sq_dists(y, y))
    iu = torch.triu_indices(len(y), len(y), 1, device=y.device)
    med = d[iu[0], iu[1]].median() if iu.shape[1] else d.new_ones(())
    return torch.where(med > 0, med, med.new_ones(()))


def mmd_loss(x_adv: torch.Tensor, y: torch.Tensor, bandwidths: torch.Tensor,
             center: torch.Tensor | None = None) -> torch.Tensor:
    """Unbiased squared MMD between two batches with the mean of RBF kernels at several bandwidths.

    ``k(a, b) = mean_s exp(-|a - b|^2 / (2 s^2))``; U-statistics within each batch.

    Parameters
    ----------
    x_adv, y, center
        As :func:`energy_loss`.
    bandwidths
        RBF bandwidths in the units of the samples (e.g. multiples of the target's median pairwise distance).
    """
    if center is not None:
        x_adv, y = x_adv - center, y - center
    scales = 2.0 * bandwidths.to(x_adv.dtype) ** 2

    def k(d2: torch.Tensor) -> torch.Tensor:
        return torch.exp(-d2[..., None] / scales).mean(-1)

    return (_off_diagonal_mean(k(_sq_dists(x_adv, x_adv))) + _off_diagonal_mean(k(_sq_dists(y, y)))
            - 2.0 * k(_sq_dists(x_adv, y)).mean())


def sinkhorn_loss(x_adv: torch.Tensor, y: torch.Tensor, reg: float, center: torch.Tensor | None = None,
                  n_iter: int = 100) -> torch.Tensor:
    """Debiased entropic optimal transport (Sinkhorn divergence, squared Euclidean cost) between two batches.

    POT's ``empirical_sinkhorn_divergence`` on torch tensors (gradients flow through its Sinkhorn iterations):
    ``OT_reg(X, Y) - (OT_reg(X, X) + OT_reg(Y, Y)) / 2`` with uniform weights.

    Parameters
    ----------
    x_adv, y, center
        As :func:`energy_loss`.
    reg
        Entropic regularisation in squared-distance units.
    n_iter
        Sinkhorn iterations.
    """
    from ot.bregman import empirical_sinkhorn_divergence

    if center is not None:
        x_adv, y = x_adv - center, y - center
    with warnings.catch_warnings():  # "Sinkhorn did not converge" after n_iter: the divergence is still usable
        warnings.simplefilter("ignore")
        return empirical_sinkhorn_divergence(x_adv, y, reg, numIterMax=n_iter).reshape(())


def individual_loss(perturbation: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean over the batch of each sample's squared distance to the mean perturbation of its group in the batch.

    The part of the transport cost beyond one shift per source class: 0 when every sample of a group (the class
    f calls it) moves alike, as a class-mean shift does; a sample moves differently from its class only where the
    other terms gain from it (e.g. the target class's spread). Counteracts a generator that fits its training
    samples one by one onto individual target training samples.

    Parameters
    ----------
    perturbation
        ``G(x)`` (batch x genes).
    groups
        Group index of each row (batch,).
    n_groups
        Number of groups.
    """
    p = perturbation.float()
    onehot, _, means = _group_means(p, groups, n_groups)
    return ((p - onehot @ means) ** 2).sum(1).mean()


def _group_means(v: torch.Tensor, groups: torch.Tensor,
                 n_groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-hot group matrix (rows x groups), group sizes and per-group mean rows of ``v`` (0 for empty groups)."""
    onehot = torch.nn.functional.one_hot(groups, n_groups).to(v.dtype)
    counts = onehot.sum(0)
    return onehot, counts, (onehot.T @ v) / counts.clamp_min(1.0)[:, None]


def group_mean_loss(x_adv: torch.Tensor, target_mean: torch.Tensor, groups: torch.Tensor,
                    n_groups: int) -> torch.Tensor:
    """Squared distance of each group's mean ``x_adv`` to the target class's mean, weighted by group size.

    ``sum_c (n_c / B) |mean_{i in c} x_adv_i - mu_t|^2`` over the groups ``c`` of the mini-batch (the classes f
    calls its samples): every source class must land on the target's mean as a whole, while each sample keeps
    its own place around it (this is a statement about group means, not about each sample, so it does not pull
    the samples together). In many genes the energy distance sees a shift of the mean only weakly next to the
    spread; this term sees it directly.

    Parameters
    ----------
    x_adv
        Perturbed samples (batch x genes).
    target_mean
        The target class's training mean (genes).
    groups, n_groups
        As :func:`individual_loss`.
    """
    x = x_adv.float()
    _, counts, means = _group_means(x, groups, n_groups)
    return (((means - target_mean) ** 2).sum(1) * counts).sum() / len(x)
