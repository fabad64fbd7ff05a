"""The transport prior of the generator: a closed-form map of every class onto the target (Gaussian OT or mean shift).

The same fit gives the evaluation's ``optimal_transport`` baseline (:func:`tspg.tl.optimal_transport`), so the
prior a generator starts from and the baseline it is measured against are one map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from tspg.nn import MARGINAL_LEVELS, TransportPrior

if TYPE_CHECKING:  # scikit-learn is imported where it is used: importing it sets KMP_* variables
    from sklearn.decomposition import PCA

#: Principal components of the transport (fewer when the training part is smaller).
N_COMPONENTS = 50
#: Ridge added to the (Ledoit-Wolf shrunk) class covariances, times their mean variance, so that they invert.
RIDGE = 1e-6
#: A class with fewer training samples than this is moved by its mean shift (a covariance needs samples).
MIN_SAMPLES_FOR_COVARIANCE = 3
#: Centroid coordinate of a class without training samples (finite: its squared distance fits float32).
FAR = 1e15
#: Folds of :func:`out_of_fold_transport` (the default of ``GeneratorConfig.prior_folds``).
PRIOR_FOLDS = 5
#: Shrinkage rules of :func:`fit_transport_prior` (``none``: the plain map; ``js``: :func:`shrink_factors`;
#: ``eb``: :func:`adaptive_shrink_factors`).
SHRINKS = ("none", "js", "eb")
#: Prior weight of the null component in :func:`adaptive_shrinkage` (a Dirichlet penalty of this minus one
#: pseudo-count, as the ashr package's ``nullweight``): in doubt, a gene has no difference.
NULL_WEIGHT = 10.0
#: Ratio of consecutive standard deviations of the normal mixture in :func:`adaptive_shrinkage`.
GRID_RATIO = float(np.sqrt(2.0))
#: Covariance models of the OT map's class Gaussians (:func:`class_gaussians`): ``own``, each class's own Ledoit-Wolf
#: covariance; ``blend``, that covariance blended with the pooled within-class covariance of every class, with a
#: weight chosen per class by cross-validated likelihood (:func:`blend_weight`).
COVARIANCES = ("own", "blend")
#: Weights of the pooled within-class covariance that :func:`blend_weight` chooses from.
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Folds of :func:`blend_weight` (``n // 2`` for a class of fewer than twice as many samples).
BLEND_FOLDS = 5
#: Marginal rules of :func:`fit_transport_prior` (``none``: the map alone; ``zero-inflated``: :func:`fit_marginals`).
MARGINALS = ("none", "zero-inflated")
#: A gene is zero-inflated for :func:`fit_marginals` where at least this share of the target's training samples
#: sit at its lowest scaled value (0).
ZERO_INFLATED_SHARE = 0.3
#: Fewest target training samples whose quantiles :func:`fit_marginals` maps onto (fewer: no marginal maps).
MIN_TARGET_FOR_MARGINALS = 10
#: Fewest training samples of a class whose moved quantiles :func:`fit_marginals` maps from (fewer: the map alone).
MIN_CLASS_FOR_MARGINALS = 3


def fit_pca(x_train: np.ndarray, n_components: int = N_COMPONENTS, seed: int = 0) -> PCA:
    """PCA of the training part with at most ``n_components`` (and fewer than the samples or genes).

    Parameters
    ----------
    x_train
        Training samples x genes (scaled units).
    n_components
        Upper bound on the components.
    seed
        Seed of the (possibly randomised) SVD.

    Returns
    -------
    The fitted :class:`sklearn.decomposition.PCA`, fitted in float32 (scaled expression has no more precision
    than that, and a float64 copy of a GTEx-sized training part alone is hundreds of MB); :func:`project` gives
    the scores.
    """
    n, g = x_train.shape
    k = max(1, min(n_components, n - 1, g))
    # scikit-learn's "auto" picks "covariance_eigh" for n >= 10 x genes (genes <= 1,000), which forms X^T X - n mu mu^T
    # and loses precision in float32; these are "auto"'s other choices
    solver = "full" if max(n, g) <= 500 or k >= 0.8 * min(n, g) else "randomized"
    from sklearn.decomposition import PCA

    return PCA(n_components=k, svd_solver=solver, random_state=seed).fit(np.asarray(x_train, dtype=np.float32))


def project(pca: PCA, x: np.ndarray) -> np.ndarray:
    """Scores of the rows of ``x`` on a :func:`fit_pca` PCA, as float64 (for the distance computations)."""
    return pca.transform(np.asarray(x, dtype=np.float32)).astype(np.float64)


def _with_ridge(cov: np.ndarray) -> np.ndarray:
    """``cov`` plus :data:`RIDGE` times its mean variance on the diagonal."""
    return cov + RIDGE * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))


def _ledoit_wolf(z: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance of the rows of ``z`` (zeros for fewer than two rows)."""
    from sklearn.covariance import LedoitWolf

    if len(z) < 2:
        return np.zeros((z.shape[1], z.shape[1]))
    return LedoitWolf().fit(z).covariance_


def gaussian(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Ledoit-Wolf shrunk covariance (plus :data:`RIDGE`) of the rows of ``z``."""
    return z.mean(0), _with_ridge(_ledoit_wolf(z))


def _moments(r: np.ndarray) -> tuple[int, np.ndarray, float]:
    """Row count, Gram matrix and sum of fourth powers of the row norms of centred rows ``r``.

    These are the sums :func:`_ledoit_wolf_moments` needs; they add over blocks of rows.
    """
    return len(r), r.T @ r, float(np.sum(np.square(np.einsum("ij,ij->i", r, r))))


def _ledoit_wolf_moments(n: int, gram: np.ndarray, s4: float) -> np.ndarray:
    """scikit-learn's ``LedoitWolf(assume_centered=True)`` covariance of ``n`` centred rows from their :func:`_moments`.

    The same formulas as ``sklearn.covariance.ledoit_wolf_shrinkage``, from sums instead of rows, so that the pooled
    covariance of every class but one is a subtraction of sums instead of a pass over all rows (at GTEx's 17,000
    samples, 250 such passes per prior fit). Zeros for fewer than two rows.
    """
    p = len(gram)
    if n < 2:
        return np.zeros((p, p))
    emp = gram / n
    mu = float(np.trace(emp)) / p
    delta_ = float(np.sum(np.square(gram))) / n**2
    beta = (s4 / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * float(np.trace(emp)) + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    return (1.0 - shrinkage) * emp + shrinkage * mu * np.eye(p)


def blend_weight(z: np.ndarray, others: np.ndarray, seed: int = 0) -> float:
    """The weight of the pooled within-class covariance in a class's covariance, chosen by cross-validated likelihood.

    The class's rows ``z`` are dealt into :data:`BLEND_FOLDS` folds (``len(z) // 2`` for a smaller class). For each
    fold, the other folds give the class's own Ledoit-Wolf covariance and, with the within-class residuals of every
    other class (``others``), the pooled one (Ledoit-Wolf of the residuals); each weight ``w`` of
    :data:`BLEND_WEIGHTS` scores the held-out rows' Gaussian log-likelihood under ``w pooled + (1 - w) own``
    (about the training folds' mean). The weight of the highest sum over folds is chosen (the smaller one on a
    tie). This is regularised discriminant analysis's covariance (Friedman 1989) with its weight chosen per class:
    where the classes share a covariance, the pooled one, estimated from every class's samples, predicts a class's
    new samples better than its own estimate from its few, and the weight goes to 1 (the Gaussian map between two
    classes of one covariance is their mean shift); where the class's covariance differs (a tumour that amplifies
    its own gene programs), its own predicts better and the weight goes to 0.

    Parameters
    ----------
    z
        The class's rows (samples x components).
    others
        The within-class residuals (each row minus its class's mean) of every other class, stacked.
    seed
        Seed of the folds.

    Returns
    -------
    The weight: 1 for a class of fewer than 4 rows (too few to cross-validate; the pooled covariance).
    """
    return _blend_weight(z, _moments(np.asarray(others, dtype=np.float64)), seed)


def _blend_weight(z: np.ndarray, others: tuple[int, np.ndarray, float], seed: int) -> float:
    """:func:`blend_weight` with the other classes' residuals given by their :func:`_moments`."""
    from scipy.stats import multivariate_normal

    n = len(z)
    folds = min(BLEND_FOLDS, n // 2)
    if folds < 2:
        return 1.0
    fold = np.random.default_rng(seed).permutation(n) % folds
    scores = np.zeros(len(BLEND_WEIGHTS))
    for j in range(folds):
        train, held = z[fold != j], z[fold == j]
        mean = train.mean(0)
        m, gram, s4 = _moments(train - mean)
        own, pooled = _ledoit_wolf_moments(m, gram, s4), _ledoit_wolf_moments(others[0] + m, others[1] + gram,
                                                                               others[2] + s4)
        for i, w in enumerate(BLEND_WEIGHTS):
            cov = _with_ridge(w * pooled + (1.0 - w) * own)
            scores[i] += float(np.sum(multivariate_normal(mean, cov).logpdf(held)))
    return float(BLEND_WEIGHTS[int(np.argmax(scores))])


def class_gaussians(z: np.ndarray, y: np.ndarray, covariance: str = "own",
                    seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
    """Mean, covariance and pooled weight of each class's rows of ``z``: the Gaussians of the OT map.

    Parameters
    ----------
    z
        Samples x components (the training part in the prior's PCA space).
    y
        Class index of each row.
    covariance
        ``own`` (:data:`COVARIANCES`): each class's Ledoit-Wolf covariance (:func:`gaussian`; weight 0).
        ``blend``: ``w pooled + (1 - w) own``, with ``pooled`` the Ledoit-Wolf covariance of every class's
        within-class residuals and ``w`` the class's :func:`blend_weight`.
    seed
        Seed of the folds of :func:`blend_weight` (offset by the class index).

    Returns
    -------
    ``{class: (mean, covariance plus RIDGE, w)}`` for every class with a row.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}, not {covariance!r}")
    z = np.asarray(z, dtype=np.float64)
    classes = [int(c) for c in np.unique(y)]
    if covariance == "own":
        return {c: (*gaussian(z[y == c]), 0.0) for c in classes}
    # a class of one row has no within-class residual (its only row is its mean)
    sums = {c: _moments(z[y == c] - z[y == c].mean(0)) for c in classes if (y == c).sum() > 1}
    k = z.shape[1]
    total = (sum(m[0] for m in sums.values()), sum((m[1] for m in sums.values()), np.zeros((k, k))),
             sum(m[2] for m in sums.values()))
    pooled = _ledoit_wolf_moments(*total)
    out = {}
    for c in classes:
        rows = z[y == c]
        own = sums.get(c, (0, np.zeros((k, k)), 0.0))
        w = _blend_weight(rows, (total[0] - own[0], total[1] - own[1], total[2] - own[2]), seed + c)
        out[c] = rows.mean(0), _with_ridge(w * pooled + (1.0 - w) * _ledoit_wolf(rows)), w
    return out


def class_variances(x_train: np.ndarray, y_train: np.ndarray, classes: list[int]) -> dict[int, np.ndarray]:
    """Per-gene variance (ddof 1, float64) of each class's training samples.

    A class of one sample gets the pooled within-class variance of the classes with two or more.
    """
    var, dof = {}, {}
    for c in classes:
        part = x_train[y_train == c]
        if len(part) > 1:
            var[c], dof[c] = part.var(0, ddof=1, dtype=np.float64), len(part) - 1
    if var:
        pooled = sum(dof[c] * var[c] for c in var) / sum(dof.values())
    else:
        pooled = np.zeros(x_train.shape[1])
    return {c: var.get(c, pooled) for c in classes}


def shrink_factors(d: np.ndarray, var_t: np.ndarray, n_t: int, var_s: np.ndarray, n_s: int) -> np.ndarray:
    """Per-gene positive-part James-Stein factors of a difference of two class means: ``max(0, 1 - 1/t^2)``.

    ``t = d / se`` is the gene's Welch statistic, ``se^2 = var_t / n_t + var_s / n_s``. Each estimated class mean
    carries its sampling noise, so a mean shift moves every gene, the many with no real difference included, by
    noise of about ``se``; scaled by its factor, a gene with a clear difference (|t| of 5 keeps 96%) keeps its
    shift and one within the noise (|t| <= 1) is not moved. For a true difference ``tau`` standard errors
    away, the factor with the least expected squared error of ``f d`` is ``tau^2 / (1 + tau^2)``; ``t^2 - 1``
    is an unbiased estimate of ``tau^2``, which gives ``1 - 1/t^2``. A gene with no variance in either class
    keeps its shift when it differs and has none when it does not.

    Parameters
    ----------
    d
        The difference of the target's and the source's training means, per gene.
    var_t, n_t, var_s, n_s
        Per-gene variance and sample count of the target's and the source's training samples.

    Returns
    -------
    The factors (float64, in [0, 1]).

    Examples
    --------
    >>> import numpy as np
    >>> shrink_factors(np.array([0.5, 0.05, 0.0]), np.full(3, 0.01), 10, np.full(3, 0.01), 10).round(3).tolist()
    [0.992, 0.2, 0.0]
    """
    se2 = var_t / n_t + var_s / n_s
    d2 = np.square(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(se2 > 0, 1.0 - se2 / d2, 1.0)
    return np.where(d2 > 0, np.clip(f, 0.0, 1.0), 0.0)


def _mixture_weights(lik: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Mixture weights maximising ``sum_j log((lik pi)_j) + sum_k penalty_k log pi_k`` on the simplex.

    The problem is convex; it is solved as mixSQP does (Kim, Carbonetto, Stephens and Anitescu 2020), without the
    sum constraint: ``- sum_j log((lik x)_j) - sum_k p_k log x_k + (n + sum p) sum_k x_k`` over ``x >= 0`` (``n``
    rows) has its minimum on the simplex. scipy's L-BFGS-B solves it to the optimum; EM (the textbook update) crawls
    along the nearly flat directions of neighbouring grid components (500 EM steps ended 20 log-likelihood units
    short on 56,000 genes, with posterior means off by 0.2 standard errors; this reaches the optimum of 200,000 EM
    steps in about 0.1 s).
    """
    from scipy.optimize import minimize

    total = float(len(lik) + penalty.sum())
    k = lik.shape[1]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        m = lik @ x
        safe = np.maximum(x, 1e-300)
        value = -float(np.log(m).sum()) - float(penalty @ np.log(safe)) + total * float(x.sum())
        grad = -(lik.T @ (1.0 / m)) - penalty / safe + total
        return value / total, grad / total  # per row: gradients of order 1 whatever the number of rows

    bounds = [(1e-12, None) if penalty[j] > 0 else (0.0, None) for j in range(k)]
    res = minimize(objective, np.full(k, 1.0 / k), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-12})
    pi = np.clip(res.x, 0.0, None)
    return pi / pi.sum()


def adaptive_shrinkage(b: np.ndarray, se: np.ndarray, null_weight: float = NULL_WEIGHT) -> np.ndarray:
    """Empirical-Bayes posterior means of many effects measured with known standard errors (adaptive shrinkage).

    Each effect ``beta_j`` is modelled as drawn from one prior shared by all: a mixture of normals centred at 0 with
    a grid of standard deviations, 0 (no effect) included (Stephens 2017, "False discovery rates: a new deal", the
    ashr package's default normal mixture); ``b_j ~ N(beta_j, se_j^2)``. The mixture weights are fitted to all
    effects by penalised maximum likelihood (a Dirichlet penalty of ``null_weight`` on the null component; a convex
    problem, solved to its optimum by ``_mixture_weights``), and each effect is replaced by its posterior mean.
    Where most effects are zero (most genes do not differ between two classes) the fitted prior has most of its
    weight at 0, so an estimate within a few standard errors of 0 is shrunk almost to 0, while one far from it keeps
    nearly all of its value: the prior is learnt from the data, not fixed per gene as in :func:`shrink_factors`.

    Parameters
    ----------
    b
        The estimates (one per effect).
    se
        Their standard errors (same shape; an effect with ``se == 0`` keeps its estimate).
    null_weight
        Dirichlet penalty of the null component.

    Returns
    -------
    The posterior means (float64, same shape as ``b``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> beta = np.r_[np.zeros(950), np.full(50, 5.0)]
    >>> post = adaptive_shrinkage(beta + rng.normal(0, 1, 1000), np.ones(1000))
    >>> float(np.abs(post[:950]).mean().round(2)), float(post[950:].mean().round(1))
    (0.08, 4.1)
    """
    b = np.asarray(b, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    out = b.copy()
    ok = (se > 0) & np.isfinite(b) & np.isfinite(se)
    if not ok.any():
        return out
    bb, ss = b[ok], se[ok]
    lo = max(float(ss.min()) / 10.0, 1e-12)
    hi = 2.0 * np.sqrt(max(float(np.max(bb * bb - ss * ss)), lo * lo))
    steps = max(1, int(np.ceil(np.log(hi / lo) / np.log(GRID_RATIO))))
    grid2 = np.r_[0.0, lo * GRID_RATIO ** np.arange(steps + 1)] ** 2
    penalty = np.zeros(len(grid2))
    penalty[0] = null_weight - 1.0

    var = grid2[None, :] + ss[:, None] ** 2
    loglik = -0.5 * (np.log(var) + bb[:, None] ** 2 / var)
    lik = np.exp(loglik - loglik.max(1, keepdims=True))
    pi = _mixture_weights(lik, penalty)
    w = lik * pi
    w /= w.sum(1, keepdims=True)
    out[ok] = (w * (grid2[None, :] / var)).sum(1) * bb
    return out


def adaptive_shrink_factors(d: np.ndarray, var_t: np.ndarray, n_t: int, var_s: np.ndarray,
                            n_s: int) -> np.ndarray:
    """Per-gene factors of a difference of two class means by :func:`adaptive_shrinkage` (empirical Bayes).

    The differences ``d`` are measured in units of their own standard errors (``t = d / se``, ``se^2 = var_t /
    n_t + var_s / n_s``, the Welch statistic), so that one prior of the standardised effects is fitted over all
    genes; each gene's factor is its posterior mean over its estimate. Unlike :func:`shrink_factors`, which
    shrinks each gene on its own statistic, the prior is learnt from every gene of the pair of classes: when
    most genes do not differ, a gene 2 standard errors away is shrunk almost to 0; a marker 5 or more away keeps
    nearly all of its shift. A gene with no variance in either class keeps its shift when it differs.

    Parameters are those of :func:`shrink_factors`.

    Returns
    -------
    The factors (float64, in [0, 1]).
    """
    d = np.asarray(d, dtype=np.float64)
    se = np.sqrt(np.asarray(var_t, np.float64) / n_t + np.asarray(var_s, np.float64) / n_s)
    varies = se > 0
    t = np.where(varies, d / np.where(varies, se, 1.0), 0.0)
    post = adaptive_shrinkage(t, varies.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(t != 0, post / t, 0.0)
    f = np.where(varies, f, np.where(d != 0, 1.0, 0.0))
    return np.clip(f, 0.0, 1.0)


def shrunk_class_means(x_train: np.ndarray, y_train: np.ndarray, classes: list[int],
                       shrink: str = "eb") -> dict[int, np.ndarray]:
    """Each class's training mean with its deviation from the mean of all class means shrunk per gene.

    For many targets at once (the conditional prior) a shift per pair of classes, each shrunk on its own as in
    :func:`fit_transport_prior`, would take targets x classes x genes numbers; here each class's mean is shrunk
    once instead, and a pair's shift is the difference of the two shrunk means. A class's deviation from the
    unweighted mean of the class means, ``e_c = mu_c - mean_j mu_j``, is replaced per gene by its empirical-Bayes
    posterior mean (``eb``, :func:`adaptive_shrinkage` over the genes, in units of its standard error) or scaled
    by its positive-part James-Stein factor (``js``). The standard error is that of the difference itself,
    ``se^2 = (1 - 1/C)^2 v_c/n_c + sum_{j != c} v_j/n_j / C^2`` (``C`` classes, ``v`` and ``n`` each class's
    per-gene variance and count): the mean of the class means carries a share of every class's noise. Where
    a class differs from the others in a few genes (its markers), those keep their deviation and the rest,
    within the noise of the means, lose theirs, so a shift between two classes moves only the genes where one
    of them stands out. With two classes the shift is the pair's own difference shrunk on its own noise.

    Parameters
    ----------
    x_train, y_train
        Training samples (scaled units) and their class indices.
    classes
        The classes to shrink (each with at least one training sample).
    shrink
        ``eb`` or ``js``.

    Returns
    -------
    Class -> its shrunk mean (float64, per gene).
    """
    if shrink not in ("eb", "js"):
        raise ValueError(f"shrink must be 'eb' or 'js', not {shrink!r}")
    n = {c: int((y_train == c).sum()) for c in classes}
    mean = {c: x_train[y_train == c].mean(0, dtype=np.float64) for c in classes}
    if len(classes) < 2:
        return mean
    var = class_variances(x_train, y_train, classes)
    k = len(classes)
    grand = sum(mean.values()) / k
    noise = {c: var[c] / n[c] for c in classes}
    total = sum(noise.values())
    rule = shrink_factors if shrink == "js" else adaptive_shrink_factors
    out = {}
    for c in classes:
        e = mean[c] - grand
        # se^2 of e as var_t/n_t + var_s/n_s with var_s/n_s = 0: the rules take the two parts' sum
        se2 = (1.0 - 1.0 / k) ** 2 * noise[c] + (total - noise[c]) / k**2
        out[c] = grand + rule(e, se2, 1, np.zeros_like(se2), 1) * e
    return out


def prior_space(x_train: np.ndarray, y_train: np.ndarray, kind: str, n_components: int,
                seed: int) -> tuple[np.ndarray, np.ndarray, PCA, np.ndarray, np.ndarray]:
    """The inputs of a prior fit checked and cast, the training part's PCA, its components and the scores."""
    if kind not in ("ot", "mean"):
        raise ValueError(f"kind must be 'ot' or 'mean', not {kind!r}")
    x_train = np.asarray(x_train, dtype=np.float32)
    pca = fit_pca(x_train, n_components, seed)
    return x_train, np.asarray(y_train), pca, pca.components_.astype(np.float64), project(pca, x_train)


def fit_transport_prior(x_train: np.ndarray, y_train: np.ndarray, target: int, n_classes: int, kind: str = "ot",
                        n_components: int = N_COMPONENTS, seed: int = 0, shrink: str = "none",
                        covariance: str = "own", marginals: str = "none",
                        like: TransportPrior | None = None) -> TransportPrior:
    """Fit the closed-form transport of every class onto ``target`` (:class:`tspg.nn.TransportPrior`).

    A PCA (at most ``n_components``) is fitted on the training part. ``kind="ot"``: per class, its training
    samples and the target's are modelled as Gaussians in the PCA space (Ledoit-Wolf shrunk covariances, so
    classes with fewer samples than components work) and a sample's coordinates ``z`` move by the Monge map
    ``T(z) = m_t + A (z - m_s)`` (POT's ``bures_wasserstein_mapping``), the optimal transport between the two
    Gaussians. ``kind="mean"``: every sample of a class moves by ``mu_target - mu_class``. In both, outside the
    PCA space a sample moves by the part of its class's mean shift outside it, so that a class's training mean
    lands on the target's. A class with fewer than :data:`MIN_SAMPLES_FOR_COVARIANCE` training samples is moved
    by its mean shift; one without training samples is never assigned (its centroid is put :data:`FAR` away).

    ``shrink="eb"`` scales each gene's part of the class's mean shift by its :func:`adaptive_shrink_factors`
    (empirical Bayes over the genes), ``shrink="js"`` by its :func:`shrink_factors` (the OT map's covariance part
    is kept): the class's training mean then lands on ``mu_class + f * (mu_target - mu_class)`` rather than on
    the target's mean, so that genes whose difference is within the sampling noise of the two means are not
    moved by that noise.

    ``covariance="blend"`` gives each class's Gaussian (the target's included) the covariance of
    :func:`class_gaussians`: its own blended with the pooled within-class covariance of all classes, by a weight
    chosen per class by cross-validated likelihood; where the classes share one covariance the map is then close
    to the mean shift (estimated from a few samples, two own covariances differ by noise, and the map between
    them moves each sample by that noise), and where they do not it stays the Gaussian OT map.

    Parameters
    ----------
    x_train
        Training samples x genes (scaled units).
    y_train
        Class index of each training sample.
    target
        The target's class index.
    n_classes
        Number of classes.
    kind
        ``ot`` or ``mean``.
    n_components
        Upper bound on the PCA components.
    seed
        Seed of the PCA's randomised SVD.
    shrink
        ``none`` (the plain map; the ``optimal_transport`` and ``mean_shift`` baselines), ``eb`` or ``js``.
    covariance
        ``own`` (each class's Ledoit-Wolf covariance; the ``optimal_transport`` baseline) or ``blend``
        (:data:`COVARIANCES`); ``kind="ot"`` only.
    marginals
        ``none`` (the map alone; the baselines) or ``zero-inflated`` (:data:`MARGINALS`): the target's
        zero-inflated genes then get each class's marginal mapped onto the target's (:func:`fit_marginals`).
    like
        With ``zero-inflated``: a prior whose genes and classes with marginal maps this one gets too (the whole
        training part's, for the fold priors of :class:`CrossFittedTransport`), instead of choosing its own.

    Returns
    -------
    The fitted prior (CPU, float32 buffers).
    """
    if shrink not in SHRINKS:
        raise ValueError(f"shrink must be one of {', '.join(SHRINKS)}, not {shrink!r}")
    if marginals not in MARGINALS:
        raise ValueError(f"marginals must be one of {', '.join(MARGINALS)}, not {marginals!r}")
    x_train, y_train, pca, comp, z = prior_space(x_train, y_train, kind, n_components, seed)
    k, g = comp.shape
    rows_t = y_train == target
    if not rows_t.any():
        raise ValueError("the target class has no training sample")
    gauss = class_gaussians(z, y_train, covariance, seed) if kind == "ot" else {}
    m_t, c_t = gauss[target][:2] if kind == "ot" else (z[rows_t].mean(0), None)
    mu_t = x_train[rows_t].mean(0, dtype=np.float64)
    centroids = np.full((n_classes, k), FAR)
    maps, shifts, outside = np.zeros((n_classes, k, k)), np.zeros((n_classes, k)), np.zeros((n_classes, g))
    present = [c for c in range(n_classes) if (y_train == c).any()]
    var = class_variances(x_train, y_train, present) if shrink != "none" else {}
    for c in present:
        rows = y_train == c
        centroids[c] = z[rows].mean(0)
        if c == target:
            continue
        d = mu_t - x_train[rows].mean(0, dtype=np.float64)
        correction = np.zeros(k)
        if shrink != "none":
            rule = shrink_factors if shrink == "js" else adaptive_shrink_factors
            d_shrunk = rule(d, var[target], int(rows_t.sum()), var[c], int(rows.sum())) * d
            correction, d = (d_shrunk - d) @ comp.T, d_shrunk
        outside[c] = d - (d @ comp.T) @ comp
        if kind == "ot" and rows.sum() >= MIN_SAMPLES_FOR_COVARIANCE:
            from ot.gaussian import bures_wasserstein_mapping

            m_s, c_s, _ = gauss[c]
            a, b = bures_wasserstein_mapping(m_s, m_t, c_s, c_t)  # T(z) = z A + b row-wise (A is symmetric)
            maps[c], shifts[c] = a - np.eye(k), b
        else:
            shifts[c] = m_t - centroids[c]
        shifts[c] += correction
    prior = TransportPrior(g, n_classes, k)
    values = {"center": pca.mean_, "components": comp, "centroids": centroids, "maps": maps, "shifts": shifts,
              "outside": outside}
    for name, v in values.items():
        getattr(prior, name).copy_(torch.as_tensor(np.asarray(v), dtype=torch.float32))
    if marginals == "zero-inflated":
        fit_marginals(prior, x_train, y_train, target, like=like)
    return prior


def zero_inflated_genes(x_target: np.ndarray) -> np.ndarray:
    """The genes (column indices) where at least :data:`ZERO_INFLATED_SHARE` of ``x_target`` (scaled) is at 0.

    None (an empty array) where ``x_target`` has fewer than :data:`MIN_TARGET_FOR_MARGINALS` rows.
    """
    x_target = np.asarray(x_target)
    if len(x_target) < MIN_TARGET_FOR_MARGINALS:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((x_target <= 0).mean(0) >= ZERO_INFLATED_SHARE)


def fit_marginals(prior: TransportPrior, x_train: np.ndarray, y_train: np.ndarray, target: int,
                  levels: int | None = None, like: TransportPrior | None = None) -> TransportPrior:
    """Give ``prior`` (fitted on ``x_train``) monotone maps of the target's zero-inflated genes' marginals.

    A Gaussian or mean-shift map moves every sample of a class by a shift that is smooth in the sample, so a
    gene that is 0 in most of the target's samples (a dropout-rich gene of single-cell data) but expressed in the
    class ends up expressed in every moved sample, and a gene 0 in the class moves every 0 to the same non-zero
    value. For the genes of :func:`zero_inflated_genes` of the target's training samples, each class with at
    least :data:`MIN_CLASS_FOR_MARGINALS` training samples gets the quantiles (``levels`` evenly spaced levels)
    of its training samples moved by ``prior``, and the target's quantiles of the same genes are stored: a moved
    sample's gene then goes through the piecewise-linear map between the two (:func:`tspg.nn.quantile_map`),
    the monotone transport of the moved class's marginal onto the target's, so that the moved samples of the
    class have the target's share of zeros and the target's distribution of the rest, in the order the map put
    them in. Without such genes (data that are not zero-inflated, or a target of fewer than
    :data:`MIN_TARGET_FOR_MARGINALS` training samples) the prior is unchanged.

    With ``like`` (a prior of the whole training part; ``prior`` is then fitted on part of it, a fold of the
    cross-fitting) the genes and the classes with maps are ``like``'s, so that G trains on the moves it is
    validated and used with; a class of ``like``'s without samples here gets none.

    Parameters
    ----------
    prior
        A prior fitted on ``x_train`` without marginal maps, on the CPU (changed in place).
    x_train, y_train, target
        As :func:`fit_transport_prior`.
    levels
        Quantile levels per gene (default :data:`tspg.nn.MARGINAL_LEVELS`; ``like``'s where given).
    like
        A prior whose genes and mapped classes to take (see above); None: chosen here.

    Returns
    -------
    ``prior``.
    """
    if prior.marginal_genes is not None:
        raise ValueError("the prior has marginal maps already")
    x_train, y_train = np.asarray(x_train, dtype=np.float32), np.asarray(y_train)
    n_classes = len(prior.centroids)
    if like is not None:
        if like.marginal_genes is None:
            return prior
        genes, eligible = like.marginal_genes.cpu().numpy(), like.marginal_classes.cpu().numpy()
        levels = like.marginal_source.shape[1]
    else:
        genes = zero_inflated_genes(x_train[y_train == target])
        counts = np.bincount(y_train[y_train >= 0], minlength=n_classes)[:n_classes]
        eligible = (counts >= MIN_CLASS_FOR_MARGINALS) & (np.arange(n_classes) != target)
        levels = levels or MARGINAL_LEVELS
    if not len(genes):
        return prior
    q = np.linspace(0.0, 1.0, levels)
    source = np.zeros((n_classes, levels, len(genes)), dtype=np.float32)
    mapped = np.zeros(n_classes, dtype=bool)
    for c in range(n_classes):
        rows = y_train == c
        if not eligible[c] or not rows.any():
            continue
        x = torch.as_tensor(x_train[rows])
        with torch.no_grad():
            moved = (x + prior(x, torch.full((len(x),), c, dtype=torch.long)))[:, genes].numpy()
        source[c] = np.quantile(moved, q, axis=0)
        mapped[c] = True
    prior.marginal_genes = torch.as_tensor(genes, dtype=torch.long)
    prior.marginal_source = torch.as_tensor(source)
    # the target's quantiles, interpolated, with its zeros up to their share: a gene at 0 in k of n samples is 0
    # up to the level k / n (interpolation alone ends the zeros at (k - 1) / (n - 1), too few for small n)
    x_target = x_train[y_train == target][:, genes]
    target_q = np.quantile(x_target, q, axis=0)
    target_q[q[:, None] <= (x_target <= 0).mean(0)[None, :]] = 0.0
    prior.marginal_target = torch.as_tensor(target_q, dtype=torch.float32)
    prior.marginal_classes = torch.as_tensor(mapped)
    return prior


def partial_moves(moves: torch.Tensor, low: float, generator: torch.Generator) -> torch.Tensor:
    """Each row of ``moves`` times its own random share, uniform in ``[low, 1]`` (``prior_share_low``).

    Training moves each sample by part of its prior displacement, so that G also learns to finish moves the map
    leaves short; the shares come from ``generator`` (on the moves' device).
    """
    share = torch.rand(len(moves), 1, generator=generator, device=moves.device)
    return moves * (low + (1.0 - low) * share)


def fold_of_rows(y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """A fold index (0 to ``folds - 1``) per row, each class spread over the folds as evenly as it can be.

    Within each class the rows are put in a random order (from ``seed``) and dealt out in turn, so a class of
    ``n`` rows has ``n // folds`` or one more in every fold.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    return fold


class CrossFittedTransport:
    """The cross-fitted transport of a training part, applied a mini-batch at a time.

    Each training row belongs to one fold (:func:`fold_of_rows`) and is moved by the :func:`fit_transport_prior` of
    the other folds; a row whose class has no sample outside its fold, or every row when the target has fewer
    training samples than folds, by the prior of the whole part. Only the priors are kept (a PCA basis and a few
    vectors per class each), not the rows x genes matrix of displacements: at 17,000 samples x 56,000 genes that
    matrix alone is 2.8 GB of float32 (its training rows), as large as the training part itself.

    Build it with :meth:`fit`; :meth:`displacements` gives the whole matrix (:func:`out_of_fold_transport`), and
    a training loop calls :meth:`batches` once per pass over the rows and moves each mini-batch, with no host-device
    copy or synchronisation (each batch's rows are grouped by prior on the host in advance): :meth:`move` from
    scratch, or :class:`RowMoves`, which keeps each training row's PCA-space part of its move (what
    :func:`tspg.train.fit_generator` uses).

    Parameters
    ----------
    group
        Per training row, the index into ``priors`` of the prior that moves it.
    priors
        The fold priors, then the whole part's prior (last).
    """

    def __init__(self, group: np.ndarray, priors: list[TransportPrior]) -> None:
        self.group = np.asarray(group, dtype=np.int64)
        self.priors = list(priors)

    @classmethod
    def fit(cls, x_train: np.ndarray, y_train: np.ndarray, target: int, n_classes: int, kind: str = "ot",
            n_components: int = N_COMPONENTS, folds: int = PRIOR_FOLDS, seed: int = 0,
            whole: TransportPrior | None = None, shrink: str = "none", covariance: str = "own",
            marginals: str = "none") -> CrossFittedTransport:
        """Fit the fold priors (arguments as :func:`out_of_fold_transport`)."""
        x_train = np.asarray(x_train, dtype=np.float32)
        y_train = np.asarray(y_train)
        full = whole if whole is not None else fit_transport_prior(x_train, y_train, target, n_classes, kind,
                                                                    n_components, seed, shrink, covariance,
                                                                    marginals)
        # the fold priors map the whole prior's genes and classes (their own choice could differ: fewer samples)
        if folds < 2 or (y_train == target).sum() < folds:
            return cls(np.zeros(len(y_train), np.int64), [full])
        fold = fold_of_rows(y_train, folds, seed)
        group = np.full(len(y_train), folds, np.int64)  # the whole prior (last) unless a fold prior applies
        priors = []
        for j in range(folds):
            held, rest = fold == j, fold != j
            priors.append(fit_transport_prior(x_train[rest], y_train[rest], target, n_classes, kind, n_components,
                                              seed, shrink, covariance, marginals, like=full))
            group[held & np.isin(y_train, np.unique(y_train[rest]))] = j
        return cls(group, [*priors, full])

    def to(self, device: str | torch.device) -> CrossFittedTransport:
        """The same transport with its priors on ``device``."""
        return CrossFittedTransport(self.group, [p.to(device) for p in self.priors])

    def displacements(self, x_train: np.ndarray) -> np.ndarray:
        """The displacement of every training row (rows x genes, float32): each prior applied to its rows."""
        x_train = np.asarray(x_train, dtype=np.float32)
        with torch.no_grad():
            out = self.priors[-1](torch.as_tensor(x_train)).numpy()
            for j, prior in enumerate(self.priors[:-1]):
                rows = self.group == j
                if rows.any():
                    out[rows] = prior(torch.as_tensor(x_train[rows])).numpy()
        return out

    def batches(self, order: torch.Tensor, batch: int) -> tuple[torch.Tensor, list[list[tuple[int, int, int]]]]:
        """``order`` (a permutation of the rows, on the host) with the rows of each whole batch grouped by prior.

        Returns
        -------
        The reordered permutation (the same rows in each batch of ``batch``, those of one prior together) and,
        per whole batch, its spans ``(prior, start, end)`` of positions within the batch.
        """
        order = order.cpu().numpy()
        spans = []
        for k in range(len(order) // batch):
            order[k * batch:(k + 1) * batch], part_spans = self.grouped(order[k * batch:(k + 1) * batch])
            spans.append(part_spans)
        return torch.as_tensor(order), spans

    def grouped(self, rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """``rows`` (training row indices) with those of one prior together, and their spans for :meth:`move`.

        Returns
        -------
        The reordered rows (those of one prior keep their order) and the spans ``(prior, start, end)`` of positions.
        """
        g = self.group[rows]
        by = np.argsort(g, kind="stable")
        j, starts = np.unique(g[by], return_index=True)
        ends = [*starts[1:], len(rows)]
        return rows[by], [(int(a), int(b), int(c)) for a, b, c in zip(j, starts, ends, strict=True)]

    def move(self, x: torch.Tensor, spans: list[tuple[int, int, int]],
             classes: torch.Tensor | None = None) -> torch.Tensor:
        """The displacement of a batch ``x`` whose rows are grouped as ``spans`` (from :meth:`batches`).

        ``classes``: each row's class (its map), else each prior assigns the nearest centroid.
        """
        out = torch.empty_like(x)
        for j, a, b in spans:
            out[a:b] = self.priors[j](x[a:b], None if classes is None else classes[a:b])
        return out


#: Values (rows x genes) at a time when :class:`RowMoves` computes a training part's coordinates: bounds the memory
#: of the gathered rows (16 MB of float32) at any number of genes.
ROW_MOVES_CHUNK = 1 << 22


class RowMoves:
    """A :class:`CrossFittedTransport` of a fixed training part, its moves' PCA-space part computed once.

    A training row is moved again at every pass over the rows, by the same prior: only its coordinates inside the
    prior's PCA space and its class (:meth:`tspg.nn.TransportPrior.coordinates`, a few numbers a row) are kept,
    and each mini-batch is moved back to genes from them (:meth:`tspg.nn.TransportPrior.displace`). Moving a batch
    from scratch took a projection, a nearest-centroid search and a gathered map per prior: tens of small
    operations, 4-6 ms a W2 batch on 2 cores against about 2 ms now (``docs/method.md``, "The training rows' prior
    moves, once a fit"). The moves are those of :meth:`CrossFittedTransport.move` up to the rounding of products
    over other row counts.

    Parameters
    ----------
    cross
        The transport (on the device of ``x_train``).
    x_train
        The training part, rows x genes.
    classes
        Each training row's class (its map; negative: the nearest centroid's), else every row takes the nearest
        centroid of its prior.
    """

    def __init__(self, cross: CrossFittedTransport, x_train: torch.Tensor,
                 classes: torch.Tensor | None = None) -> None:
        self.cross = cross
        self.width = [int(p.components.shape[0]) for p in cross.priors]
        self.dz = torch.zeros(len(x_train), max(self.width), dtype=torch.float32, device=x_train.device)
        self.classes = torch.zeros(len(x_train), dtype=torch.long, device=x_train.device)
        chunk = max(1, ROW_MOVES_CHUNK // max(1, x_train.shape[1]))
        with torch.no_grad():
            for j, prior in enumerate(cross.priors):
                rows = np.flatnonzero(cross.group == j)
                for a in range(0, len(rows), chunk):
                    idx = torch.as_tensor(rows[a:a + chunk], device=x_train.device)
                    dz, c = prior.coordinates(x_train[idx], None if classes is None else classes[idx])
                    self.dz[idx, :self.width[j]], self.classes[idx] = dz, c

    def move(self, x: torch.Tensor, rows: torch.Tensor, spans: list[tuple[int, int, int]]) -> torch.Tensor:
        """The displacement of the training rows ``rows`` (whose values are ``x``), grouped as ``spans``.

        ``spans``: from :meth:`CrossFittedTransport.batches` or :meth:`CrossFittedTransport.grouped`.
        """
        out = torch.empty_like(x)
        for j, a, b in spans:
            r = rows[a:b]
            out[a:b] = self.cross.priors[j].displace(x[a:b], self.dz[r, :self.width[j]], self.classes[r])
        return out


def out_of_fold_transport(x_train: np.ndarray, y_train: np.ndarray, target: int, n_classes: int,
                          kind: str = "ot", n_components: int = N_COMPONENTS, folds: int = PRIOR_FOLDS,
                          seed: int = 0, whole: TransportPrior | None = None, shrink: str = "none",
                          covariance: str = "own", marginals: str = "none") -> np.ndarray:
    """Each training sample's transport ``T(x)`` by a prior fitted without it (cross-fitting).

    The prior a generator is trained on top of is fitted on the training part, so on its own training samples
    it is better than on any new sample: with fewer samples than components they lie inside its PCA space and
    their class's Gaussian fits them exactly. Trained on those displacements, G learns that nothing is left to
    do, and a new sample the map leaves short of the target stays short (measured on leukemia, see
    ``docs/method.md``). Here the rows are dealt into ``folds`` folds per class (:func:`fold_of_rows`) and each
    fold is moved by a :func:`fit_transport_prior` of the other folds, so G trains on displacements as good as a
    new sample's. The prior stored with the generator is still the one of the whole training part.
    :class:`CrossFittedTransport` holds the fold priors; training applies them a mini-batch at a time.

    Parameters
    ----------
    x_train, y_train, target, n_classes, kind, n_components, seed, shrink, covariance, marginals
        As :func:`fit_transport_prior`.
    folds
        Number of folds (at least 2).
    whole
        The :func:`fit_transport_prior` of the whole training part with these settings, where the caller has it
        already (a generator's own prior); by default (None) it is fitted here.

    Returns
    -------
    The displacements (rows of ``x_train`` x genes, float32). A row whose class has no sample outside its
    fold (a class of one training sample), or every row when the target has fewer than ``folds`` training
    samples, gets the displacement of the prior of the whole training part instead.
    """
    return CrossFittedTransport.fit(x_train, y_train, target, n_classes, kind, n_components, folds, seed, whole,
                                    shrink, covariance, marginals).displacements(x_train)
