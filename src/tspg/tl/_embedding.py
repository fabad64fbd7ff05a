"""t-SNE maps of original and perturbed samples (PCA first, as in the paper)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tspg._options import TSNE_MODES, TsneMode


@dataclass
class TsneMap:
    """Coordinates of a t-SNE map.

    Attributes
    ----------
    original
        2-D positions of the original samples (samples x ``["tsne1", "tsne2"]``).
    perturbed
        2-D positions of the perturbed samples, indexed like their originals.
    mode
        ``project`` (map fitted on the originals, perturbed samples placed into it) or ``joint`` (one map of both).
    n_pcs
        Principal components the map was computed on.
    """

    original: pd.DataFrame
    perturbed: pd.DataFrame
    mode: str
    n_pcs: int


def _perplexity(n: int, perplexity: float) -> float:
    # openTSNE needs 3 * perplexity < n; small sets get a smaller perplexity rather than an error
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


def tsne_map(
    original: np.ndarray | pd.DataFrame,
    perturbed: np.ndarray | pd.DataFrame,
    mode: TsneMode = "project",
    n_pcs: int = 50,
    perplexity: float = 30.0,
    seed: int = 0,
) -> TsneMap:
    """A 2-D t-SNE map of original samples with perturbed samples placed into it.

    Both sets are reduced to ``n_pcs`` principal components fitted on the ORIGINAL samples. In ``project`` mode
    (the default) the t-SNE map is fitted on the originals only and each perturbed sample is then positioned in
    that fixed map (openTSNE's ``transform``), so perturbed points cannot bend the map. ``joint`` fits one map on
    both sets together (the original tool's behaviour).

    Parameters
    ----------
    original, perturbed
        Samples x genes, in the same (scaled) units; data frames keep their sample names.
    mode
        ``project`` or ``joint``.
    n_pcs
        Principal components (capped at the number of samples and genes).
    perplexity
        t-SNE perplexity (lowered automatically for small sets).
    seed
        Random seed of the PCA and t-SNE.

    Returns
    -------
    The :class:`TsneMap`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = tsne_map(rng.normal(size=(60, 10)), rng.normal(size=(5, 10)), n_pcs=5)
    >>> m.original.shape, m.perturbed.shape
    ((60, 2), (5, 2))
    """
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    if mode not in TSNE_MODES:
        raise ValueError(f"mode must be one of {', '.join(TSNE_MODES)}, not {mode!r}")
    orig_index = original.index if isinstance(original, pd.DataFrame) else pd.RangeIndex(len(original))
    pert_index = perturbed.index if isinstance(perturbed, pd.DataFrame) else pd.RangeIndex(len(perturbed))
    x = np.asarray(original, dtype=np.float64)
    y = np.asarray(perturbed, dtype=np.float64)
    if len(x) < 4:
        raise ValueError("a t-SNE map needs at least 4 original samples")
    k = int(min(n_pcs, x.shape[0] - 1, x.shape[1]))
    pca = PCA(n_components=k, random_state=seed).fit(x)
    px, py = pca.transform(x), pca.transform(y)
    if mode == "project" or len(py) == 0:
        tsne = TSNE(perplexity=_perplexity(len(px), perplexity), random_state=seed, n_jobs=1, verbose=False)
        emb = tsne.fit(px)
        ex = np.asarray(emb)
        # openTSNE's transform has its own perplexity (5), lowered (with a logged warning) on small maps
        ey = (np.asarray(emb.transform(py, perplexity=_perplexity(len(px), 5.0))) if len(py)
              else np.zeros((0, 2)))
    else:
        both = np.vstack([px, py])
        tsne = TSNE(perplexity=_perplexity(len(both), perplexity), random_state=seed, n_jobs=1, verbose=False)
        e = np.asarray(tsne.fit(both))
        ex, ey = e[: len(px)], e[len(px):]
    cols = ["tsne1", "tsne2"]
    return TsneMap(pd.DataFrame(ex, index=orig_index, columns=cols), pd.DataFrame(ey, index=pert_index, columns=cols),
                   mode, k)


def choose_tsne_samples(
    labels: pd.Series,
    perturbed_sources: pd.Series,
    target: str,
    n_perturbed: int | None = 100,
    n_classes: int | None = 10,
    max_original: int | None = 3000,
    seed: int = 0,
    include_target: bool = False,
) -> tuple[list[str], list[str], list[str]]:
    """The paper's selection for a t-SNE figure: some perturbed samples and a few classes including the target.

    Parameters
    ----------
    labels
        Class per original sample (the map's background).
    perturbed_sources
        Source class per perturbed sample.
    target
        The target class; always shown.
    n_perturbed
        Perturbed samples to show at most (random, ``None`` = all).
    n_classes
        Classes to show at most, the target included (``None`` = all): the target, then the classes most of the
        chosen perturbed samples come from, then random others.
    max_original
        Original samples at most in the map (a random subset of the shown classes, stratified by class).
    seed
        Random seed.
    include_target
        Also show perturbed samples of the target class itself (left out by default: they have no transition).

    Returns
    -------
    ``(classes, original_samples, perturbed_samples)``.
    """
    rng = np.random.default_rng(seed)
    pert = perturbed_sources.dropna()
    if not include_target:
        pert = pert[pert != target]
    classes_all = sorted(labels.unique())
    counts = pert.value_counts()
    chosen = [target] if target in classes_all else []
    # classes by the number of perturbed samples they could contribute, then random fill
    for c in counts.index:
        if c not in chosen and c in classes_all:
            chosen.append(c)
    others = [c for c in classes_all if c not in chosen]
    chosen += [others[i] for i in rng.permutation(len(others))]
    if n_classes is not None:
        chosen = chosen[: max(1, n_classes)]
    pert = pert[pert.isin(chosen)]
    names = pert.index.to_numpy(dtype=object)
    if n_perturbed is not None and len(names) > n_perturbed:
        names = names[np.sort(rng.choice(len(names), n_perturbed, replace=False))]
    shown = labels[labels.isin(chosen)]
    if max_original is not None and len(shown) > max_original:
        share = max_original / len(shown)
        keep = []
        for _, group in shown.groupby(shown, sort=True):
            n = max(1, int(round(len(group) * share)))
            keep.extend(group.index[np.sort(rng.choice(len(group), min(n, len(group)), replace=False))])
        # the perturbed samples' own originals are always in the map
        keep_set = set(keep) | {s for s in names if s in shown.index}
        shown = shown[shown.index.isin(keep_set)]
    chosen = [c for c in chosen if c in set(shown) or c == target]
    return chosen, [str(s) for s in shown.index], [str(s) for s in names]
