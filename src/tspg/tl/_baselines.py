"""Simple answers TSPG has to beat: identity, mean shift, Gaussian optimal transport, nearest target, target mean.

Every baseline works like TSPG: in scaled units ([0, 1] on the training part), on the samples to perturb, with the
same clip as the generator (:func:`clip_perturbed`), so every metric compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from tspg.train import N_COMPONENTS, fit_pca, fit_transport_prior, project  # noqa: F401 (re-exported)

BaselineName = Literal["identity", "mean_shift", "optimal_transport", "nearest_target", "target_mean"]



def clip_perturbed(x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
    """TSPG's clip of perturbed samples: ``clip(x_adv, min(x, 0), max(x, 1))``, as float32.

    Training samples lie in [0, 1] and stay there; a held-out value already outside [0, 1] bounds its own side,
    so the clip never moves a gene that the perturbation did not move (see :func:`tspg.nn.perturb`).

    Parameters
    ----------
    x
        Samples x genes before the perturbation (scaled units).
    x_adv
        The perturbed samples, same shape.

    Returns
    -------
    The clipped perturbed samples.

    Examples
    --------
    >>> import numpy as np
    >>> clip_perturbed(np.array([[0.5, 1.2, -0.1]]), np.array([[1.5, 1.5, -0.5]])).astype(float).round(2).tolist()
    [[1.0, 1.2, -0.1]]
    """
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.asarray(x_adv, dtype=np.float32), np.minimum(x, 0.0), np.maximum(x, 1.0)).astype(np.float32)


def _class_rows(y: np.ndarray, cls: object) -> np.ndarray:
    rows = np.asarray(y) == cls
    if not rows.any():
        raise ValueError(f"class {cls!r} has no training sample")
    return rows


def identity(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
             seed: int = 0) -> np.ndarray:
    """No perturbation: ``x_adv = x`` (P = 0), the floor of every effect."""
    return np.asarray(x, dtype=np.float32).copy()


def class_mean_shift(x_train: np.ndarray, y_train: np.ndarray, classes: Sequence[object],
                     target: object) -> np.ndarray:
    """The original tool's mean-shift perturbation of each class: ``mu_target - mu_class`` (training-part means).

    Parameters
    ----------
    x_train, y_train
        Training samples (any units; the shift is in the same units) and their classes.
    classes
        The classes to give a shift for, in the order of the result's rows.
    target
        The target class.

    Returns
    -------
    Classes x genes, float32.

    Examples
    --------
    >>> x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 5.0]])
    >>> class_mean_shift(x, np.array(["a", "a", "b"]), ["a", "b"], "b").tolist()
    [[3.0, 4.0], [0.0, 0.0]]
    """
    x_train = np.asarray(x_train)
    y_train = np.asarray(y_train)
    mu_target = x_train[_class_rows(y_train, target)].mean(0, dtype=np.float64)
    return np.stack([mu_target - x_train[_class_rows(y_train, c)].mean(0, dtype=np.float64)
                     for c in classes]).astype(np.float32)


def mean_shift(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
               seed: int = 0) -> np.ndarray:
    """The original tool's baseline: ``x + mu_target - mu_source`` (:func:`class_mean_shift`), clipped."""
    x = np.asarray(x, dtype=np.float32)
    sources = np.asarray(sources)
    kinds = np.unique(sources)
    shifts = class_mean_shift(x_train, y_train, kinds, target)
    shift = shifts[np.searchsorted(kinds, sources)]
    return clip_perturbed(x, x + shift)


def optimal_transport(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
                      seed: int = 0, shrink: str = "none", covariance: str = "own") -> np.ndarray:
    """Closed-form Gaussian optimal transport from each source class to the target, in a PCA space.

    The map of :func:`tspg.train.fit_transport_prior` (``kind="ot"``, the generator's ``--prior ot``):
    a PCA (at most :data:`N_COMPONENTS` components) is fitted on the training part; per source class, the
    training samples of the source and of the target are modelled as Gaussians (Ledoit-Wolf shrunk covariances,
    so classes with fewer samples than components work) and each sample's PCA coordinates ``z`` move to the
    Monge map ``T(z) = m_t + A (z - m_s)`` (POT's ``bures_wasserstein_mapping``). The displacement ``T(z) - z``
    goes back to genes through the components, and outside the PCA space the sample moves by the mean shift
    (``mu_target - mu_source`` minus its part in the PCA space), so a source class's training mean lands on the
    target's (before the clip). Each sample moves by the map of its given source class (the generator's prior
    assigns classes itself); samples of the target class itself are left unchanged. ``shrink`` is the prior's
    mean-shift shrinkage (``--prior-shrink``; the baseline is the plain map, ``none``), ``covariance`` the class
    Gaussians' covariance (``--prior-covariance``; the baseline: each class's own, ``own``).
    """
    x = np.asarray(x, dtype=np.float32)
    y_train, sources = np.asarray(y_train), np.asarray(sources)
    classes = np.unique(y_train)
    _class_rows(y_train, target)
    prior = fit_transport_prior(x_train, np.searchsorted(classes, y_train), int(np.searchsorted(classes, target)),
                                len(classes), kind="ot", seed=seed, shrink=shrink, covariance=covariance)
    x_adv = x.copy()
    for cls in np.unique(sources):
        if cls == target:
            continue
        rows = sources == cls
        _class_rows(y_train, cls)
        c = torch.full((int(rows.sum()),), int(np.searchsorted(classes, cls)), dtype=torch.long)
        with torch.no_grad():
            x_adv[rows] = x[rows] + prior(torch.as_tensor(x[rows]), classes=c).numpy()
    return clip_perturbed(x, x_adv)


def nearest_target(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
                   seed: int = 0) -> np.ndarray:
    """"Memorise the target": replace each sample by its nearest target-class training sample (genes, Euclidean)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float32)
    pool = np.asarray(x_train[_class_rows(y_train, target)], dtype=np.float32)
    if len(x) == 0:
        return x.copy()
    idx = NearestNeighbors(n_neighbors=1).fit(pool).kneighbors(x, return_distance=False)[:, 0]
    return clip_perturbed(x, pool[idx])


def target_mean(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
                seed: int = 0) -> np.ndarray:
    """Pure collapse: every sample replaced by the target class's training mean (clipped as TSPG clips).

    The floor a collapsed generator sits on: it is called the target and matches the target mean exactly, but has
    none of the target's spread, so distribution distances and the two-sample test expose it.
    """
    x = np.asarray(x, dtype=np.float32)
    mu = x_train[_class_rows(y_train, target)].mean(0).astype(np.float32)
    return clip_perturbed(x, np.broadcast_to(mu, x.shape))


Baseline = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object, int], np.ndarray]

BASELINES: dict[str, Baseline] = {
    "identity": identity,
    "mean_shift": mean_shift,
    "optimal_transport": optimal_transport,
    "nearest_target": nearest_target,
    "target_mean": target_mean,
}


def perturb_baseline(name: BaselineName, x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray,
                     sources: np.ndarray, target: object, seed: int = 0) -> np.ndarray:
    """Perturb samples towards ``target`` with a baseline chosen by name.

    Parameters
    ----------
    name
        One of :data:`BASELINES`: ``identity``, ``mean_shift``, ``optimal_transport``, ``nearest_target``,
        ``target_mean``.
    x_train, y_train
        Training samples x genes (scaled units) and their classes (any label type, e.g. names or indices).
    x
        Samples x genes to perturb (scaled units).
    sources
        The class of each sample of ``x`` (its true class, or f's call where unknown), same type as ``y_train``.
    target
        The target class.
    seed
        Seed of anything random (the PCA's SVD); the same inputs give the same output.

    Returns
    -------
    The perturbed samples ``x_adv`` (float32, scaled units, clipped as TSPG clips).

    Examples
    --------
    >>> import numpy as np
    >>> x_train = np.array([[0.0, 0.0], [0.2, 0.0], [1.0, 1.0], [0.8, 1.0]])
    >>> y_train = np.array(["a", "a", "b", "b"])
    >>> x_adv = perturb_baseline("mean_shift", x_train, y_train, np.array([[0.1, 0.1]]), np.array(["a"]), "b")
    >>> x_adv.astype(float).round(2).tolist()  # 0.1 + 0.9 - 0.1 and 0.1 + 1.0 - 0.0 clipped to 1
    [[0.9, 1.0]]
    """
    if name not in BASELINES:
        raise ValueError(f"Unknown baseline '{name}'; valid names: {', '.join(BASELINES)}.")
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train)
    x = np.asarray(x, dtype=np.float32)
    sources = np.asarray(sources)
    if x.ndim != 2 or x_train.ndim != 2 or x.shape[1] != x_train.shape[1]:
        raise ValueError(f"x {x.shape} and x_train {x_train.shape} must be samples x the same genes")
    if len(sources) != len(x) or len(y_train) != len(x_train):
        raise ValueError("need one source class per sample of x and one class per training sample")
    return BASELINES[name](x_train, y_train, x, sources, target, seed)


def perturb_baselines(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, sources: np.ndarray, target: object,
                      names: Sequence[BaselineName] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Every baseline's (or the named ones') perturbed samples, by name, for :func:`tspg.tl.evaluate`.

    Parameters are those of :func:`perturb_baseline`; ``names`` defaults to all of :data:`BASELINES`.
    """
    return {n: perturb_baseline(n, x_train, y_train, x, sources, target, seed) for n in (names or list(BASELINES))}
