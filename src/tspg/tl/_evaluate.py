"""Evaluate perturbed held-out samples of TSPG and the baselines with every metric, per source class.

:func:`fit_references` fits what the metrics compare with on the training part only (independent classifiers,
class centroids, a PCA space, MMD bandwidths); :func:`evaluate` scores each method's perturbed samples per source
class and for all sources together; :func:`evaluation_markdown` renders the per-target tables.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tspg.tl._baselines import N_COMPONENTS, fit_pca, project
from tspg.tl._metrics import (
    METRICS,
    MetricInput,
    MetricName,
    check_metric_names,
    compute_metrics,
    median_bandwidths,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # scikit-learn is imported where it is used: importing it sets KMP_* variables
    from sklearn.decomposition import PCA

#: Name of the reference rows: real target training samples scored against held-out target samples. Their
#: ``success_*`` columns are the share of the real held-out target samples each classifier calls the target (its
#: recall of the target): the success a perfect transition into the target's distribution would have.
FLOOR = "real_target_train"
#: The metrics the floor rows have (those defined for real samples without a perturbation or classifier calls).
#: ``c2st_auc`` is not among them: in a PCA fitted on the training part, training samples spread more along the
#: noise components than held-out ones, which the test's squared features pick up (0.999 on pbmc68k, real vs real).
FLOOR_METRICS: tuple[str, ...] = ("energy_distance", "mmd", "energy_distance_genes", "mmd_genes", "r2_mean_all",
                                  "r2_mean_de20", "r2_mean_de100")
#: Columns of the evaluation.md tables.
HEADLINE_METRICS: tuple[str, ...] = (
    "success_f", "success_logreg", "success_knn", "centroid_accuracy", "energy_distance", "energy_distance_genes",
    "c2st_auc", "mmd", "r2_mean_de20", "pearson_delta", "de_direction", "l2", "genes_moved",
)
ALL = "all"
MAX_NEIGHBORS = 15
#: The methods of :func:`tspg.tl.perturb_baselines` that a comparison with TSPG counts (``identity`` makes no
#: transition).
COMPARED_BASELINES: tuple[str, ...] = ("mean_shift", "optimal_transport", "nearest_target", "target_mean")
#: The metrics :func:`behind_baselines` compares by default: success, realism and agreement with DE.
COMPARED_METRICS: tuple[str, ...] = (
    "success_f", "success_logreg", "energy_distance", "energy_distance_genes", "c2st_auc", "mmd", "r2_mean_de20",
    "de_direction", "specificity",
)


def best_baseline(frame: pd.DataFrame, metric: str, source: str = ALL,
                  baselines: Sequence[str] = COMPARED_BASELINES) -> tuple[str, float] | None:
    """The baseline with the best value of ``metric`` in an :func:`evaluate` frame, and that value.

    Returns
    -------
    ``(method, value)``, or None when no baseline has a value.
    """
    rows = frame[(frame["source"] == source) & frame["method"].isin(list(baselines))]
    if metric not in rows.columns:
        return None
    values = rows.set_index("method")[metric].dropna()
    if values.empty or METRICS[metric].better == "neither":
        return None
    best = values.map(METRICS[metric].badness).idxmin()
    return str(best), float(values[best])


def behind_baselines(frame: pd.DataFrame, method: str = "tspg", metrics: Sequence[str] = COMPARED_METRICS,
                     source: str = ALL, baselines: Sequence[str] = COMPARED_BASELINES) -> list[dict]:
    """Where ``method`` is behind the best baseline: one entry per metric that a baseline does better.

    Parameters
    ----------
    frame
        A frame of :func:`evaluate`.
    method
        The method compared (``tspg``).
    metrics
        Metrics with a direction (higher or lower is better); others are skipped.
    source
        Which rows (``all`` sources together by default).
    baselines
        The methods compared with.

    Returns
    -------
    ``{"metric", "baseline", "baseline_value", "value"}`` dicts, in the order of ``metrics`` (empty when the
    method is best or tied everywhere).
    """
    rows = frame[frame["source"] == source].set_index("method")
    if method not in rows.index:
        return []
    out = []
    for metric in metrics:
        if metric not in rows.columns or METRICS[metric].better == "neither" or pd.isna(rows.loc[method, metric]):
            continue
        best = best_baseline(frame, metric, source, baselines)
        if best is None:
            continue
        value = float(rows.loc[method, metric])
        if METRICS[metric].badness(value) > METRICS[metric].badness(best[1]) + 1e-9:
            out.append({"metric": metric, "baseline": best[0], "baseline_value": best[1], "value": value})
    return out


@dataclass
class References:
    """What the metrics compare perturbed samples with, fitted on the training part only (scaled units).

    Attributes
    ----------
    classes
        The class labels (sorted unless given).
    x_train, y_train
        The training samples and their classes.
    pca
        PCA (at most 50 components) fitted on ``x_train``; distances are computed in its space.
    z_train
        PCA coordinates of ``x_train``.
    class_means
        Classes x genes training means (the centroids of ``centroid_accuracy``, the means of ``pearson_delta``).
    bandwidths
        MMD bandwidths (median heuristic on ``z_train`` times 0.5, 1, 2).
    bandwidths_genes
        The same in the scaled gene space (median heuristic on ``x_train``).
    classifiers
        Independent classifiers fitted on the training part, by name: ``logreg``, ``knn`` and ``centroid``.
    seed
        The seed everything was fitted with.
    """

    classes: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    pca: PCA
    z_train: np.ndarray
    class_means: np.ndarray
    bandwidths: tuple[float, ...]
    classifiers: dict
    seed: int = 0
    bandwidths_genes: tuple[float, ...] = (1.0,)
    _de: dict = field(default_factory=dict, repr=False)

    def mean(self, cls: object) -> np.ndarray:
        """Training mean of a class (genes)."""
        idx = np.flatnonzero(self.classes == cls)
        if not len(idx):
            raise ValueError(f"Unknown class {cls!r}; classes: {', '.join(map(str, self.classes))}.")
        return self.class_means[idx[0]]

    def de_statistics(self, target: object, sources: Sequence) -> np.ndarray:
        """Welch's t per gene of the target vs the union of ``sources`` on the training part (NaN -> 0).

        Positive: higher in the target. Results are cached per (target, sources). Computed from per-gene means and
        standard deviations (``ttest_ind_from_stats``), a block of genes at a time: ``ttest_ind`` on the samples
        made several float64 copies of the training part, the peak of ``tspg run``'s memory.
        """
        from scipy.stats import ttest_ind_from_stats

        key = (target, tuple(sorted(sources, key=str)))
        if key not in self._de:
            a = _mean_sd(self.x_train, self.y_train == target)
            b = _mean_sd(self.x_train, np.isin(self.y_train, list(key[1])))
            with np.errstate(all="ignore"):
                t = ttest_ind_from_stats(*a, *b, equal_var=False).statistic
            self._de[key] = np.nan_to_num(np.asarray(t, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return self._de[key]

    def calls(self, x: np.ndarray, target: object) -> dict[str, np.ndarray]:
        """Per independent classifier: whether it calls each row of ``x`` the target."""
        return {name: np.asarray(clf.predict(x)) == target for name, clf in self.classifiers.items()}


@dataclass(frozen=True)
class NearestMean:
    """The nearest class centroid classifier on given class means (Euclidean), as scikit-learn's ``NearestCentroid``.

    Its ``fit`` computes the within-class standard deviations too (for its shrinkage option) in float64: two
    float64 copies of the training part, the peak of ``tspg run``'s evaluation; the means are computed here anyway.
    """

    classes: np.ndarray
    means: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class whose mean is nearest to each row of ``x``."""
        from sklearn.metrics import pairwise_distances_argmin

        return self.classes[pairwise_distances_argmin(np.asarray(x, dtype=np.float64), self.means)]


def _mean_sd(x: np.ndarray, rows: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-gene mean and standard deviation (ddof 1, float64) of the ``rows`` of ``x``, and their count."""
    n = int(rows.sum())
    mean, sd = np.empty(x.shape[1]), np.empty(x.shape[1])
    for j in range(0, x.shape[1], block):
        part = x[rows, j:j + block].astype(np.float64)
        mean[j:j + block] = part.mean(0)
        sd[j:j + block] = part.std(0, ddof=1) if n > 1 else np.nan
    return mean, sd, n


def fit_references(x_train: np.ndarray, y_train: np.ndarray, classes: Sequence | None = None, *, seed: int = 0,
                   n_components: int = N_COMPONENTS, n_neighbors: int | None = None) -> References:
    """Fit the references of :func:`evaluate` on the training part (the generator's own training split).

    Parameters
    ----------
    x_train, y_train
        Training samples x genes (scaled units) and their classes.
    classes
        The class labels (default: the sorted classes of ``y_train``).
    seed
        Seed of the PCA and the bandwidth subsample; the same inputs give the same references.
    n_components
        At most this many principal components (fewer with fewer samples or genes).
    n_neighbors
        k of the kNN classifier (default ``round(sqrt(n))`` capped at 15 and at the smallest class size).

    Returns
    -------
    The :class:`References`: a logistic regression (``logreg``), a kNN classifier (``knn``) and a nearest class
    centroid classifier (``centroid``), none of which trained the generator; the PCA; class means; bandwidths.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train)
    if len(x_train) != len(y_train):
        raise ValueError("need one class per training sample")
    classes = np.asarray(sorted(np.unique(y_train), key=str) if classes is None else list(classes))
    missing = [c for c in classes if not (y_train == c).any()]
    if missing:
        raise ValueError(f"class(es) without a training sample: {', '.join(map(str, missing))}")
    counts = np.array([(y_train == c).sum() for c in classes])
    k = n_neighbors or max(1, min(MAX_NEIGHBORS, round(math.sqrt(len(y_train))), int(counts.min())))
    pca = fit_pca(x_train, n_components, seed)
    z_train = project(pca, x_train)
    means = np.stack([x_train[y_train == c].mean(0, dtype=np.float64) for c in classes])
    classifiers = {
        "logreg": LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train),
        "knn": KNeighborsClassifier(n_neighbors=min(k, len(y_train))).fit(x_train, y_train),
        "centroid": NearestMean(classes, means),
    }
    return References(classes, x_train, y_train, pca, z_train, means, median_bandwidths(z_train, seed=seed),
                      classifiers, seed, median_bandwidths(x_train, seed=seed))


def _expected_delta(refs: References, target: object, sources: np.ndarray) -> np.ndarray:
    values, counts = np.unique(sources, return_counts=True)
    mu_source = sum(c * refs.mean(v) for v, c in zip(values, counts, strict=True)) / counts.sum()
    return refs.mean(target) - mu_source


def evaluate(references: References, x: np.ndarray, y: np.ndarray, target: object,
             methods: Mapping[str, np.ndarray], *, classify: Callable[[np.ndarray], np.ndarray] | None = None,
             metrics: Sequence[MetricName] | None = None, floor: bool = True, n_floor_draws: int = 10,
             seed: int = 0, true_delta: np.ndarray | None = None) -> pd.DataFrame:
    """Score each method's perturbed held-out samples, per source class and for all sources together.

    Held-out samples of the target class are not scored (perturbing them to the target is meaningless); they are
    the real target samples that distributions and means are compared with.

    Parameters
    ----------
    references
        From :func:`fit_references` on the same training part the generator was trained on.
    x, y
        Held-out samples x genes (scaled units) and their true classes, the target class included.
    target
        The target class.
    methods
        Method name -> perturbed samples ``x_adv`` of every row of ``x`` (same shape), e.g. ``{"tspg":
        perturbation.x_adv_scaled, **tl.perturb_baselines(...)}``.
    classify
        f as a callable: scaled samples -> predicted classes (same labels as ``y``), e.g. ``lambda v:
        np.asarray(model.classes)[predict_logits(model.classifier, v).argmax(1).numpy()]``. Without it
        ``success_f`` is NaN.
    metrics
        Metric names of :data:`tspg.tl.METRICS` (default: all).
    floor
        Add the reference rows ``real_target_train``: random subsets of the real target training samples, as many
        as the group's perturbed samples, scored with the distribution metrics against the held-out target samples
        (the floor of the distances and the ceiling of the R^2 values, size-matched, averaged over draws).
    n_floor_draws
        Random subsets averaged per floor row.
    seed
        Seed of the floor draws and of the folds of ``c2st_auc``.
    true_delta
        Optional, per row of ``x``: its own known true transition to the target (scaled units; synthetic paired
        atlases); needed by ``specificity``.

    Returns
    -------
    One row per (method, source): columns ``method``, ``source`` (each source class, then ``all``), ``n`` (scored
    samples) and one column per metric. Methods keep the order given; the floor rows come last.

    Examples
    --------
    >>> import numpy as np
    >>> from tspg import tl
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 20)
    >>> x = np.clip(rng.normal(0.5, 0.1, (40, 8)) + 0.2 * (y == "b")[:, None], 0, 1).astype("float32")
    >>> refs = tl.fit_references(x[::2], y[::2])
    >>> methods = tl.perturb_baselines(x[::2], y[::2], x[1::2], y[1::2], "b", names=["identity", "mean_shift"])
    >>> frame = tl.evaluate(refs, x[1::2], y[1::2], "b", methods, metrics=["success_logreg", "l1"], floor=False)
    >>> frame[frame["source"] == "all"][["method", "n", "success_logreg"]].values.tolist()
    [['identity', 10, 0.0], ['mean_shift', 10, 0.9]]
    """
    names = check_metric_names(metrics)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != references.x_train.shape[1] or len(y) != len(x):
        raise ValueError(f"x {x.shape} must be samples x the references' {references.x_train.shape[1]} genes, "
                         "with one class per sample in y")
    references.mean(target)  # validates the target
    for name, x_adv in methods.items():
        if np.shape(x_adv) != x.shape:
            raise ValueError(f"method '{name}': perturbed samples of shape {np.shape(x_adv)}, expected {x.shape}")
    pca = references.pca
    is_target = y == target
    x_target = x[is_target]
    # no held-out target sample: the realism metrics are NaN, success is still scored
    z_target = project(pca, x_target) if len(x_target) else np.zeros((0, pca.n_components_))
    keep = ~is_target
    x_src, y_src = x[keep], y[keep]
    delta_src = None if true_delta is None else np.asarray(true_delta, np.float64)[keep]
    sources = sorted(np.unique(y_src), key=str)
    if ALL in map(str, sources):
        log.warning("a source class is named '%s', the name of the rows of all sources together: its own rows are "
                    "left out of the evaluation (its samples are in the '%s' rows)", ALL, ALL)
    groups = [(str(c), y_src == c) for c in sources if str(c) != ALL] + [(ALL, np.ones(len(y_src), bool))]
    before = references.calls(x_src, target)
    if classify is not None:
        before["f"] = np.asarray(classify(x_src)) == target

    rows = []
    for method, x_adv_all in methods.items():
        x_adv = np.asarray(x_adv_all, dtype=np.float32)[keep]
        z_adv = project(pca, x_adv)
        after = references.calls(x_adv, target)
        if classify is not None:
            after["f"] = np.asarray(classify(x_adv)) == target
        for source, m in groups:
            inp = MetricInput(
                x_adv=x_adv[m], x=x_src[m], z_adv=z_adv[m], z_target=z_target, x_target=x_target,
                bandwidths=references.bandwidths, bandwidths_genes=references.bandwidths_genes, seed=seed,
                true_delta=None if delta_src is None else delta_src[m],
                de_t=references.de_statistics(target, list(np.unique(y_src[m]))),
                expected_delta=_expected_delta(references, target, y_src[m]),
                calls={k: (None if k == "centroid" else before[k][m], after[k][m]) for k in after},
            )
            rows.append({"method": method, "source": source, "n": int(m.sum()), **compute_metrics(inp, names)})
    if floor:
        recall = references.calls(x_target, target) if len(x_target) else {}
        if classify is not None and len(x_target):
            recall["f"] = np.asarray(classify(x_target)) == target
        rows += _floor_rows(references, target, groups, y_src, x_target, z_target, names, n_floor_draws, seed,
                            recall)
    frame = pd.DataFrame(rows, columns=["method", "source", "n", *names])
    return frame


def _floor_rows(refs: References, target: object, groups: list, y_src: np.ndarray, x_target: np.ndarray,
                z_target: np.ndarray, names: list[str], n_draws: int, seed: int,
                recall: dict[str, np.ndarray]) -> list[dict]:
    pool = refs.x_train[refs.y_train == target]
    z_pool = refs.z_train[refs.y_train == target]
    wanted = [n for n in names if n in FLOOR_METRICS]
    rng = np.random.default_rng(seed)
    rows = []
    for source, m in groups:
        size = min(int(m.sum()), len(pool))
        de_t = refs.de_statistics(target, list(np.unique(y_src[m])))
        draws = 1 if size == len(pool) else max(1, n_draws)
        values = []
        for _ in range(draws):
            idx = np.sort(rng.choice(len(pool), size, replace=False))
            inp = MetricInput(x_adv=pool[idx], z_adv=z_pool[idx], z_target=z_target, x_target=x_target,
                              bandwidths=refs.bandwidths, bandwidths_genes=refs.bandwidths_genes, seed=seed,
                              de_t=de_t)
            values.append(compute_metrics(inp, wanted))
        mean = {n: float(np.mean([v[n] for v in values])) for n in wanted}
        # success: the classifiers' recall of the real held-out target samples (the same for every source)
        mean.update({n: float(recall[n[len("success_"):]].mean()) for n in names
                     if n.startswith("success_") and n[len("success_"):] in recall})
        rows.append({"method": FLOOR, "source": source, "n": size, **mean})
    return rows


def _fmt(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def evaluation_markdown(frames: Mapping[str, pd.DataFrame], metrics: Sequence[str] = HEADLINE_METRICS,
                        source: str = ALL, digits: int = 3) -> str:
    """Render ``evaluation.md``: per target, a table with the methods as rows and headline metrics as columns.

    Parameters
    ----------
    frames
        Target -> the frame :func:`evaluate` returned for it.
    metrics
        The columns (metric names present in the frames).
    source
        Which rows to show (``all`` sources together by default, or one source class).
    digits
        Decimals.

    Returns
    -------
    Markdown text: a legend of the metrics (and which direction is better), then one table per target.
    """
    lines = ["# Evaluation of perturbations on held-out samples", "",
             f"Rows: methods; `{FLOOR}` is the floor (real target training samples vs held-out target samples, "
             "size-matched; its success columns: the share of the real held-out target samples each classifier "
             "calls the target, what a perfect transition would get). All values in scaled units; held-out samples "
             "of the target class are not scored.", ""]
    for name in metrics:
        if name in METRICS:
            better = METRICS[name].better
            lines.append(f"- `{name}`: {METRICS[name].description}" + ("" if better == "neither"
                                                                       else f" ({better} is better)"))
    for target, frame in frames.items():
        rows = frame[frame["source"] == source]
        cols = [c for c in metrics if c in frame.columns]
        lines += ["", f"## {target}", "", f"Source: {source}.", "",
                  "| method | n | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for _, r in rows.iterrows():
            cells = [str(r["method"]), str(int(r["n"]))] + [_fmt(r[c], digits) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", behind_sentence(frame, source, digits)]
    return "\n".join(lines) + "\n"


def behind_sentence(frame: pd.DataFrame, source: str = ALL, digits: int = 3) -> str:
    """One plain sentence: where TSPG is behind a baseline on this target (or that it is not)."""
    behind = behind_baselines(frame, source=source)
    if not behind:
        return "TSPG is best or tied with the best baseline on every compared metric."
    parts = [f"{b['metric']} ({b['baseline']} {_fmt(b['baseline_value'], digits)} vs TSPG {_fmt(b['value'], digits)})"
             for b in behind]
    return "**TSPG is behind a baseline** on " + ", ".join(parts) + "."
