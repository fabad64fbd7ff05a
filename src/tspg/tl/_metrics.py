"""Quality metrics of perturbed samples: success, realism, agreement with differential expression, size.

Every metric takes one :class:`MetricInput` (a group of perturbed samples of one method, all or one source class,
plus what they are compared with) and returns a float (NaN where undefined); they are looked up by name in
:data:`METRICS`. :func:`tspg.tl.evaluate` builds the inputs from held-out data.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.distance import pdist

from tspg.data import share_called_target

MetricName = Literal[
    "success_f", "success_logreg", "success_knn", "centroid_accuracy", "energy_distance", "mmd",
    "energy_distance_genes", "mmd_genes", "c2st_auc", "specificity", "r2_mean_all",
    "r2_mean_de20", "r2_mean_de100", "pearson_delta", "de_overlap", "de_direction", "l1", "l2", "genes_moved",
]

#: A gene counts as moved when ``|P|`` exceeds this many scaled units.
MOVED_THRESHOLD = 0.1
#: Top perturbed genes per direction compared with the top DE genes per direction.
TOP_K = 20
#: Multiples of the median pairwise distance used as RBF bandwidths of the MMD.
BANDWIDTH_SCALES = (0.5, 1.0, 2.0)


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Multivariate energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean, V-statistic).

    Székely's E-statistic with Euclidean (not squared) distances, without the square root that
    ``scipy.stats.energy_distance`` takes: 0 for identical sample sets, never negative, growing with a shift
    between the sets. The distances come from matrix products (:func:`pair_sets`).

    Parameters
    ----------
    x, y
        Two sets of samples x features (e.g. PCA coordinates).

    Returns
    -------
    The distance (NaN when either set is empty).

    Examples
    --------
    >>> import numpy as np
    >>> energy_distance(np.zeros((3, 2)), np.zeros((3, 2)))
    0.0
    >>> round(energy_distance(np.zeros((1, 1)), np.ones((1, 1))), 6)
    2.0
    """
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    return pair_sets(x, y).energy()


def mmd(x: np.ndarray, y: np.ndarray, bandwidths: Sequence[float]) -> float:
    """Squared maximum mean discrepancy with the mean of RBF kernels at several bandwidths (V-statistic).

    ``k(a, b) = mean_s exp(-|a - b|^2 / (2 s^2))`` over the bandwidths ``s``; ``MMD^2 = E k(X, X') + E k(Y, Y') -
    2 E k(X, Y)``, 0 for identical sets and never negative.

    Parameters
    ----------
    x, y
        Two sets of samples x features.
    bandwidths
        RBF bandwidths (same units as the features), e.g. from :func:`median_bandwidths`.

    Returns
    -------
    The MMD^2 (NaN when either set is empty).

    Examples
    --------
    >>> import numpy as np
    >>> mmd(np.zeros((2, 2)), np.zeros((2, 2)), [1.0])
    0.0
    """
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    return pair_sets(x, y).mmd(bandwidths)


@dataclass(frozen=True)
class PairedSets:
    """Two sample sets as their distinct rows, the squared distances between those, and each set's weights.

    Built by :func:`pair_sets`. Every mean over pairs of the two sets (``E k(X, Y)``, ``E k(X, X')``, ``E k(Y, Y')``
    for a function ``k`` of the distance) is a weighted sum over the distinct rows, so the energy distance and the
    MMD share one distance matrix.

    Attributes
    ----------
    sq
        Squared Euclidean distances between the distinct rows (symmetric, 0 on the diagonal; float64).
    wx, wy
        Per distinct row, its share of the rows of ``x`` and of ``y`` (each sums to 1).
    """

    sq: np.ndarray
    wx: np.ndarray
    wy: np.ndarray

    def means(self, k: np.ndarray) -> tuple[float, float, float]:
        """``E k(X, Y)``, ``E k(X, X')`` and ``E k(Y, Y')`` for ``k`` given on the pairs of distinct rows."""
        kx, ky = k @ self.wx, k @ self.wy
        return float(self.wx @ ky), float(self.wx @ kx), float(self.wy @ ky)

    def energy(self) -> float:
        """The energy distance of the two sets (:func:`energy_distance`)."""
        xy, xx, yy = self.means(np.sqrt(self.sq))
        value = 2 * xy - xx - yy
        return value if np.isnan(value) else max(0.0, value)

    def mmd(self, bandwidths: Sequence[float]) -> float:
        """The squared MMD of the two sets with the mean of RBF kernels at ``bandwidths`` (:func:`mmd`)."""
        k = np.zeros_like(self.sq)
        for s in bandwidths:  # one matrix at a time, not one per bandwidth at once
            k += np.exp(self.sq * (-1.0 / (2.0 * float(s) ** 2)))
        xy, xx, yy = self.means(k / len(bandwidths))
        value = xx + yy - 2 * xy
        return value if np.isnan(value) else max(0.0, value)


def pair_sets(x: np.ndarray, y: np.ndarray) -> PairedSets:
    """The distinct rows of ``x`` and ``y`` together, their squared distances and each set's weights.

    Rows that occur several times (in one set or in both) are kept once, with their counts as weights: identical
    rows are then exactly 0 apart, as the same set twice is exactly 0 from itself, and a method that puts many
    samples on one point (a class mean, the nearest training sample) costs one row. The distances come from matrix
    products (scikit-learn's ``euclidean_distances``: ``|a|^2 + |b|^2 - 2 a.b``) of the rows centred on their mean.
    That form rounds by about 1e-16 times the rows' squared spread around their mean: far below the distances
    between distinct samples of scaled expression (the evaluation's figures agree with direct differences to
    1e-9 and better), not for distinct rows closer than about 1e-8 of the spread, which come out a few 1e-9 of the
    spread apart. Sets with NaN or inf give NaN. The energy distance and
    the MMD of 2,288 against 44 samples of 4,386 genes took 20.5 s through ``scipy``'s ``cdist`` (six matrices,
    each by direct differences) and take 0.46 s here (``docs/method.md``, "Evaluation speed").

    Parameters
    ----------
    x, y
        Two non-empty sets of samples x the same features.

    Returns
    -------
    The :class:`PairedSets`.
    """
    from sklearn.metrics.pairwise import euclidean_distances

    x, y = np.asarray(x), np.asarray(y)
    both = np.concatenate([x, y]) if x.dtype == y.dtype else np.concatenate([x.astype(np.float64), y])
    if both.dtype.kind == "f":
        both += 0.0  # -0.0 becomes 0.0: rows that differ only there are the same row
    first, inverse = _distinct_rows(both)
    wx = np.bincount(inverse[:len(x)], minlength=len(first)) / len(x)
    wy = np.bincount(inverse[len(x):], minlength=len(first)) / len(y)
    rows = both[first].astype(np.float64)
    del both
    if not np.isfinite(rows).all():  # NaN or inf: no distance is defined
        return PairedSets(np.full((len(first), len(first)), np.nan), wx, wy)
    if rows.shape[1] == 0:  # points without coordinates are all the same point
        return PairedSets(np.zeros((len(first), len(first))), wx, wy)
    rows -= rows.mean(0)
    small = len(rows) ** 2 * rows.shape[1] < SMALL_PRODUCT  # see SMALL_PRODUCT: small products on one BLAS thread
    with _blas().limit(limits=1, user_api="blas") if small else contextlib.nullcontext():
        sq = euclidean_distances(rows, squared=True)  # the same array twice: the diagonal is set to 0
    sq += sq.T  # exactly symmetric, so that swapping the sets swaps the means exactly
    sq *= 0.5
    return PairedSets(sq, wx, wy)


def median_bandwidths(z: np.ndarray, scales: Sequence[float] = BANDWIDTH_SCALES, max_samples: int = 1000,
                      seed: int = 0) -> tuple[float, ...]:
    """RBF bandwidths by the median heuristic: the median pairwise distance of ``z`` times each scale.

    Parameters
    ----------
    z
        Samples x features (at most ``max_samples`` random rows are used, drawn with ``seed``).
    scales
        Multiples of the median.
    max_samples, seed
        Subsampling of large inputs.

    Returns
    -------
    One bandwidth per scale (the median falls back to 1 when every distance is 0).
    """
    z = np.asarray(z)
    if len(z) > max_samples:  # rows first, then the float64 copy: only the drawn rows are ever copied
        z = z[np.random.default_rng(seed).choice(len(z), max_samples, replace=False)]
    d = pdist(np.asarray(z, dtype=np.float64))  # the pairs i < j, without the square matrix or its indices
    med = float(np.median(d)) if d.size and np.median(d) > 0 else 1.0
    return tuple(med * s for s in scales)


#: Multiply-adds (distinct rows squared x features) below which :func:`pair_sets` runs its product on one BLAS
#: thread. OpenBLAS's threads spin for a while after each product, taking a core from whatever runs next: the
#: evaluation of a 1,000 x 100 run (about 170 small products) took 7.0-8.0 s (user 9.3-10.7 s) with two threads
#: against 5.8-6.6 s (user 7.2-7.8 s) for the code before, and 6.5-6.7 s on one thread, as before.
SMALL_PRODUCT = 100_000_000


@functools.cache
def _blas() -> object:
    """A threadpoolctl controller of the BLAS libraries loaded (numpy's among them), made once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _distinct_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first index of each distinct row of ``a`` (bit for bit) and each row's distinct-row number.

    A dictionary on the rows' bytes: ``np.unique(a, axis=0)`` sorts the rows as structured values, which took
    383 ms for 2,332 random rows of 4,386 float32 values, against 31 ms here.
    """
    seen: dict[bytes, int] = {}
    inverse = np.fromiter((seen.setdefault(row.tobytes(), len(seen)) for row in a), np.intp, len(a))
    first = np.empty(len(seen), np.intp)
    first[inverse[::-1]] = np.arange(len(a) - 1, -1, -1)  # the last write of each number is its first row
    return first, inverse


@dataclass
class MetricInput:
    """One group of perturbed samples (one method, one or all source classes) and what it is compared with.

    All expression values are in scaled units.

    Attributes
    ----------
    x_adv
        Perturbed samples x genes.
    x
        The samples before the perturbation (None for real samples, e.g. the floor reference); metrics that need
        the perturbation ``P = x_adv - x`` are NaN without it.
    z_adv, z_target
        PCA coordinates (fitted on training data) of the perturbed and of the held-out real target samples.
    x_target
        Held-out real target samples x genes.
    bandwidths
        RBF bandwidths of the MMD, in PCA units.
    bandwidths_genes
        RBF bandwidths of the MMD in the scaled gene space.
    true_delta
        Per sample, its own true transition to the target (``x_true_target - x``, scaled units), where known
        (synthetic paired atlases); ``specificity`` needs it.
    seed
        Seed of the folds of ``c2st_auc``.
    de_t
        Per gene, Welch's t of target vs the group's source class(es) on training data (positive: up in target).
    expected_delta
        Per gene, the mean over the group's samples of ``mu_target - mu_source`` (training class means).
    calls
        Per classifier name (``f``, ``logreg``, ``knn``, ``centroid``): ``(before, after)`` boolean arrays, "called
        the target" before and after the perturbation (``before`` may be None).
    pairs
        Not a parameter: filled by the distance metrics, per space (``pca``, ``genes``), with the :class:`PairedSets`
        of the perturbed and the real target samples, shared by the energy distance and the MMD of that space. It is
        kept for the arrays it was computed from (the same objects) and emptied when :func:`compute_metrics` returns;
        change an array's values in place between two metric calls only through a new :class:`MetricInput`.
    """

    x_adv: np.ndarray
    x: np.ndarray | None = None
    z_adv: np.ndarray | None = None
    z_target: np.ndarray | None = None
    x_target: np.ndarray | None = None
    bandwidths: Sequence[float] = (1.0,)
    bandwidths_genes: Sequence[float] = (1.0,)
    true_delta: np.ndarray | None = None
    seed: int = 0
    de_t: np.ndarray | None = None
    expected_delta: np.ndarray | None = None
    calls: dict[str, tuple[np.ndarray | None, np.ndarray]] = field(default_factory=dict)
    pairs: dict[str, tuple[object, object, PairedSets | None]] = field(default_factory=dict, init=False, repr=False,
                                                                       compare=False)

    @property
    def perturbation(self) -> np.ndarray | None:
        """``P = x_adv - x`` (None when ``x`` is not known)."""
        return None if self.x is None else np.asarray(self.x_adv, np.float64) - np.asarray(self.x, np.float64)


NAN = float("nan")


def _success(name: str) -> Callable[[MetricInput], float]:
    def metric(inp: MetricInput) -> float:
        if name not in inp.calls:
            return NAN
        before, after = inp.calls[name]
        after = np.asarray(after, bool)
        before = np.zeros(len(after), bool) if before is None else np.asarray(before, bool)
        return share_called_target(before, after, True)[0]

    return metric


def _centroid_accuracy(inp: MetricInput) -> float:
    if "centroid" not in inp.calls or len(inp.calls["centroid"][1]) == 0:
        return NAN
    return float(np.mean(inp.calls["centroid"][1]))


def _paired(inp: MetricInput, space: Literal["pca", "genes"]) -> PairedSets | None:
    """The perturbed and the real target samples of ``inp`` paired in ``space`` (computed once per input)."""
    a, b = (inp.z_adv, inp.z_target) if space == "pca" else (inp.x_adv, inp.x_target)
    kept = inp.pairs.get(space)
    if kept is None or kept[0] is not a or kept[1] is not b:
        kept = a, b, None if a is None or b is None or not len(a) or not len(b) else pair_sets(a, b)
        inp.pairs[space] = kept
    return kept[2]


def _energy_in(space: Literal["pca", "genes"]) -> Callable[[MetricInput], float]:
    def metric(inp: MetricInput) -> float:
        pairs = _paired(inp, space)
        return NAN if pairs is None else pairs.energy()

    return metric


def _mmd_in(space: Literal["pca", "genes"]) -> Callable[[MetricInput], float]:
    def metric(inp: MetricInput) -> float:
        pairs = _paired(inp, space)
        return NAN if pairs is None else pairs.mmd(inp.bandwidths if space == "pca" else inp.bandwidths_genes)

    return metric


def c2st_auc(a: np.ndarray, b: np.ndarray, seed: int = 0, max_folds: int = 5) -> float:
    """Classifier two-sample test: cross-validated ROC AUC of a logistic regression telling ``a`` from ``b``.

    The features are each coordinate and its square (standardised inside each fold): a linear model on the
    coordinates alone sees only differences of means and cannot tell a collapsed set (every sample at the
    target mean) from the real one; the squares let it see differences of spread too. The AUC is computed once
    on the pooled out-of-fold scores
    (stratified folds, as many as the smaller set allows, at most ``max_folds``). 0.5: the two sets cannot be
    told apart; 1: perfectly separable; values below 0.5 happen by chance on small sets.

    Parameters
    ----------
    a, b
        Two sets of samples x features (e.g. perturbed and real target samples in PCA coordinates).
    seed
        Seed of the folds.
    max_folds
        Upper bound on the folds.

    Returns
    -------
    The AUC (NaN when either set has fewer than 2 samples).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> round(c2st_auc(rng.normal(0, 1, (40, 3)), rng.normal(5, 1, (40, 3))), 2)
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    folds = min(max_folds, len(a), len(b))
    if folds < 2:
        return NAN
    x = np.concatenate([a, b])
    x = np.concatenate([x, (x - x.mean(0)) ** 2], axis=1)
    y = np.r_[np.ones(len(a), int), np.zeros(len(b), int)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_predict(clf, x, y, cv=cv, method="decision_function")
    return float(roc_auc_score(y, scores))


def _c2st(inp: MetricInput) -> float:
    if inp.z_adv is None or inp.z_target is None:
        return NAN
    return c2st_auc(inp.z_adv, inp.z_target, seed=inp.seed)


def _specificity(inp: MetricInput) -> float:
    """R^2 of each sample's own true transition beyond its source class's mean transition."""
    p = inp.perturbation
    if p is None or inp.true_delta is None or len(p) < 2:
        return NAN
    t = np.asarray(inp.true_delta, np.float64)
    if not np.isfinite(t).all():
        return NAN
    spread = ((t - t.mean(0)) ** 2).sum()
    return float(1.0 - ((p - t) ** 2).sum() / spread) if spread > 0 else NAN


def _top_by_abs(t: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-np.abs(t), kind="stable")[:k]


def _r2(k: int | None) -> Callable[[MetricInput], float]:
    def metric(inp: MetricInput) -> float:
        from sklearn.metrics import r2_score

        if inp.x_target is None or len(inp.x_target) == 0 or len(inp.x_adv) == 0:
            return NAN
        truth = np.asarray(inp.x_target, np.float64).mean(0)
        pred = np.asarray(inp.x_adv, np.float64).mean(0)
        if k is not None:
            if inp.de_t is None:
                return NAN
            genes = _top_by_abs(np.asarray(inp.de_t), k)
            truth, pred = truth[genes], pred[genes]
        return float(r2_score(truth, pred)) if len(truth) > 1 else NAN

    return metric


def _pearson_delta(inp: MetricInput) -> float:
    from scipy.stats import pearsonr

    p = inp.perturbation
    if p is None or inp.expected_delta is None or len(p) == 0:
        return NAN
    mean_p = p.mean(0)
    delta = np.asarray(inp.expected_delta, np.float64)
    if np.ptp(mean_p) == 0 or np.ptp(delta) == 0:
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pearsonr(mean_p, delta).statistic)


def _top_directional(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest positive and k most negative entries of ``v`` (indices; zeros never count)."""
    up = np.argsort(-v, kind="stable")[:k]
    down = np.argsort(v, kind="stable")[:k]
    return up[v[up] > 0], down[v[down] < 0]


def _top_perturbed(inp: MetricInput) -> tuple[np.ndarray, np.ndarray] | None:
    p = inp.perturbation
    if p is None or inp.de_t is None or len(p) == 0:
        return None
    up, down = _top_directional(p.mean(0), TOP_K)
    return (up, down) if len(up) + len(down) else None


def _de_overlap(inp: MetricInput) -> float:
    top = _top_perturbed(inp)
    if top is None:
        return NAN
    de_up, de_down = _top_directional(np.asarray(inp.de_t, np.float64), TOP_K)
    perturbed = np.concatenate(top)
    return float(np.isin(perturbed, np.concatenate([de_up, de_down])).mean())


def _de_direction(inp: MetricInput) -> float:
    top = _top_perturbed(inp)
    if top is None:
        return NAN
    t = np.asarray(inp.de_t, np.float64)
    up, down = top
    return float(np.concatenate([t[up] > 0, t[down] < 0]).mean())


def _size(kind: str) -> Callable[[MetricInput], float]:
    def metric(inp: MetricInput) -> float:
        p = inp.perturbation
        if p is None or len(p) == 0:
            return NAN
        if kind == "l1":
            return float(np.abs(p).sum(1).mean())
        if kind == "l2":
            return float(np.linalg.norm(p, axis=1).mean())
        return float((np.abs(p) > MOVED_THRESHOLD).sum(1).mean())

    return metric


@dataclass(frozen=True)
class Metric:
    """A metric of the registry: its function, what it means, and which direction is better."""

    func: Callable[[MetricInput], float]
    description: str
    better: Literal["higher", "lower", "neither", "closer to 0.5"]

    def __call__(self, inp: MetricInput) -> float:
        """Compute the metric."""
        return self.func(inp)

    def badness(self, value: float) -> float:
        """``value`` turned into a score where lower is better (NaN for a metric without a direction).

        ``higher``: ``-value``; ``lower``: ``value``; ``closer to 0.5`` (the two-sample test's AUC, whose values
        below 0.5 are chance on a few samples or a test that tells the sets apart the other way round):
        ``|value - 0.5|``.
        """
        if self.better == "higher":
            return -value
        if self.better == "lower":
            return value
        if self.better == "closer to 0.5":
            return abs(value - 0.5)
        return NAN


METRICS: dict[str, Metric] = {
    "success_f": Metric(_success("f"), "share called the target by f, of those f did not call the target before",
                        "higher"),
    "success_logreg": Metric(_success("logreg"), "the same under an independent logistic regression", "higher"),
    "success_knn": Metric(_success("knn"), "the same under an independent k-nearest-neighbours classifier",
                          "higher"),
    "centroid_accuracy": Metric(_centroid_accuracy, "share whose nearest training class centroid is the target",
                                "higher"),
    "energy_distance": Metric(_energy_in("pca"), "energy distance to held-out real target samples (PCA space)",
                              "lower"),
    "mmd": Metric(_mmd_in("pca"), "MMD^2 (RBF, 3 bandwidths) to held-out real target samples (PCA space)", "lower"),
    "energy_distance_genes": Metric(_energy_in("genes"), "energy distance to held-out real target samples (scaled gene "
                                    "space)", "lower"),
    "mmd_genes": Metric(_mmd_in("genes"), "MMD^2 (RBF, 3 bandwidths) to held-out real target samples (scaled gene "
                        "space)", "lower"),
    "c2st_auc": Metric(_c2st, "classifier two-sample test: cross-validated ROC AUC of a logistic regression "
                       "telling perturbed from held-out real target samples (PCA space; 0.5 = indistinguishable)",
                       "closer to 0.5"),
    "specificity": Metric(_specificity, "R^2 of each sample's perturbation against its own known true transition, "
                          "relative to the source group's mean true transition (0 = no better than one shift for "
                          "all; paired synthetic atlases only)", "higher"),
    "r2_mean_all": Metric(_r2(None), "R^2 of mean expression vs held-out real target, all genes", "higher"),
    "r2_mean_de20": Metric(_r2(20), "R^2 of mean expression vs held-out real target, top 20 DE genes", "higher"),
    "r2_mean_de100": Metric(_r2(100), "R^2 of mean expression vs held-out real target, top 100 DE genes",
                            "higher"),
    "pearson_delta": Metric(_pearson_delta, "Pearson r of mean P vs mu_target - mu_source (training means)",
                            "higher"),
    "de_overlap": Metric(_de_overlap, f"share of the top-{TOP_K} up/down perturbed genes among the top-{TOP_K} "
                         "up/down DE genes (Welch t, target vs source, training data)", "higher"),
    "de_direction": Metric(_de_direction, f"share of the top-{TOP_K} up/down perturbed genes moved in the DE "
                           "direction (sign of t)", "higher"),
    "l1": Metric(_size("l1"), "mean L1 norm of P per sample (scaled units)", "neither"),
    "l2": Metric(_size("l2"), "mean L2 norm of P per sample (scaled units)", "neither"),
    "genes_moved": Metric(_size("moved"), f"mean genes per sample with |P| > {MOVED_THRESHOLD} scaled units",
                          "neither"),
}


def compute_metrics(inp: MetricInput, names: Sequence[MetricName] | None = None) -> dict[str, float]:
    """Compute metrics of :data:`METRICS` by name (all by default) on one group of perturbed samples.

    Parameters
    ----------
    inp
        The group and its references.
    names
        Metric names; a ValueError lists the valid ones for an unknown name.

    Returns
    -------
    ``{name: value}`` in the order asked (NaN where a metric is undefined for the group).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full((2, 3), 0.5)
    >>> compute_metrics(MetricInput(x_adv=x, x=x), ["l1", "genes_moved"])
    {'l1': 0.0, 'genes_moved': 0.0}
    """
    names = check_metric_names(names)
    try:
        return {n: METRICS[n](inp) for n in names}
    finally:
        inp.pairs.clear()  # the distance matrices are shared by the metrics of one call, not kept after it


def check_metric_names(names: Sequence[str] | None) -> list[str]:
    """The metric names as a list (all of :data:`METRICS` for None); a ValueError lists the valid names."""
    names = list(METRICS) if names is None else list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric '{unknown[0]}'; valid names: {', '.join(METRICS)}.")
    return names
