"""The most perturbed genes: per sample, across samples, per source class, and the paper's consistency figure."""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_genes_per_sample(perturbation: pd.DataFrame, sources: pd.Series | None = None, k: int = 20) -> pd.DataFrame:
    """The ``k`` most positively and ``k`` most negatively perturbed genes of every sample.

    Parameters
    ----------
    perturbation
        Samples x genes perturbations (``x_adv - x``), in the units to rank by.
    sources
        Source class per sample (NA where unknown).
    k
        Genes per direction.

    Returns
    -------
    Long table: ``sample, source, direction ("up"/"down"), rank (1 = strongest), gene, perturbation``. Genes with
    a perturbation of exactly 0 are never listed (a sample whose genes did not move has no top genes).

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame([[0.5, -0.2, 0.1]], index=["s1"], columns=["A", "B", "C"])
    >>> top_genes_per_sample(p, k=1)[["direction", "gene"]].values.tolist()
    [['up', 'A'], ['down', 'B']]
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    values = perturbation.to_numpy(dtype=np.float64)
    genes = np.asarray(perturbation.columns, dtype=object)
    k = min(k, values.shape[1])
    src = (sources.reindex(perturbation.index) if sources is not None
           else pd.Series(pd.NA, index=perturbation.index, dtype=object))
    # stable sort: ties keep gene order, so the tables are deterministic
    up_idx = np.argsort(-values, axis=1, kind="stable")[:, :k]
    down_idx = np.argsort(values, axis=1, kind="stable")[:, :k]
    frames = []
    for direction, idx in (("up", up_idx), ("down", down_idx)):
        vals = np.take_along_axis(values, idx, axis=1)
        frame = pd.DataFrame({
            "sample": np.repeat(perturbation.index.to_numpy(dtype=object), k),
            "source": np.repeat(src.to_numpy(dtype=object), k),
            "direction": direction,
            "rank": np.tile(np.arange(1, k + 1), len(values)),
            "gene": genes[idx].ravel(),
            "perturbation": vals.ravel(),
        })
        keep = frame["perturbation"] > 0 if direction == "up" else frame["perturbation"] < 0
        frames.append(frame[keep])
    out = pd.concat(frames, ignore_index=True)
    order = {"up": 0, "down": 1}
    out = out.sort_values(["sample", "direction", "rank"], key=lambda c: c.map(order) if c.name == "direction" else c,
                          kind="stable")
    return out.reset_index(drop=True)


def _summary(per_sample: pd.DataFrame, perturbation: pd.DataFrame, samples: pd.Index) -> pd.DataFrame:
    n = len(samples)
    counts = per_sample.groupby(["gene", "direction"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=["up", "down"], fill_value=0).reindex(perturbation.columns, fill_value=0)
    table = pd.DataFrame({
        "count_up": counts["up"].astype(int),
        "fraction_up": counts["up"] / n if n else 0.0,
        "count_down": counts["down"].astype(int),
        "fraction_down": counts["down"] / n if n else 0.0,
        "mean_perturbation": perturbation.loc[samples].mean(axis=0),
    })
    table.index.name = "gene"
    return table


def top_gene_summary(per_sample: pd.DataFrame, perturbation: pd.DataFrame) -> pd.DataFrame:
    """How often each gene is in the per-sample top-k lists, across all samples.

    Parameters
    ----------
    per_sample
        Output of :func:`top_genes_per_sample`.
    perturbation
        The perturbations it was made from (for the mean perturbation per gene).

    Returns
    -------
    Per gene (every gene of ``perturbation``): ``count_up, fraction_up, count_down, fraction_down,
    mean_perturbation``, sorted by ``count_up`` then ``mean_perturbation`` (descending); genes equal in both keep
    their order in ``perturbation``'s columns.
    """
    table = _summary(per_sample, perturbation, perturbation.index)
    return _ranked(table, table["count_up"], table["mean_perturbation"])


def _ranked(table: pd.DataFrame, count: pd.Series, move: pd.Series) -> pd.DataFrame:
    """``table``'s rows by ``count`` then ``move`` (both descending); rows equal in both keep their order."""
    order = np.lexsort((np.arange(len(table)), -move.to_numpy(dtype=np.float64), -count.to_numpy(dtype=np.float64)))
    return table.iloc[order]


def top_gene_summary_by_source(per_sample: pd.DataFrame, perturbation: pd.DataFrame,
                               sources: pd.Series) -> pd.DataFrame:
    """:func:`top_gene_summary` per source class (long table with a ``source`` column; genes in any list only)."""
    frames = []
    src = sources.reindex(perturbation.index)
    for cls in sorted(src.dropna().unique()):
        samples = src.index[src == cls]
        part = _summary(per_sample[per_sample["source"] == cls], perturbation, samples)
        part = part[(part["count_up"] > 0) | (part["count_down"] > 0)]
        part = _ranked(part, part["count_up"], part["mean_perturbation"])
        frames.append(part.reset_index().assign(source=cls, n_samples=len(samples)))
    if not frames:
        return pd.DataFrame(columns=["source", "n_samples", "gene", "count_up", "fraction_up", "count_down",
                                     "fraction_down", "mean_perturbation"])
    out = pd.concat(frames, ignore_index=True)
    return out[["source", "n_samples", "gene", "count_up", "fraction_up", "count_down", "fraction_down",
                "mean_perturbation"]]


def consensus_genes(summary: pd.DataFrame, direction: str, k: int = 20) -> list[str]:
    """The ``k`` genes most often in the per-sample top-k lists of ``direction``.

    Ties in the count go to the larger mean move in ``direction`` (the larger ``mean_perturbation`` for ``up``,
    the more negative for ``down``); genes equal in both come in the order of ``summary``'s rows (for
    :func:`top_gene_summary`'s table of genes with identical perturbations: their order in the matrix). Genes in
    no list are never returned.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"count_up": [2, 2, 2], "count_down": [0, 0, 0], "mean_perturbation": [0.3, 0.5, 0.3]},
    ...                  index=pd.Index(["Z", "A", "B"], name="gene"))
    >>> consensus_genes(s, "up", 3)
    ['A', 'Z', 'B']
    """
    if direction not in ("up", "down"):
        raise ValueError("direction must be 'up' or 'down'")
    count = summary[f"count_{direction}"]
    sign = 1.0 if direction == "up" else -1.0
    ranked = _ranked(summary, count, sign * summary["mean_perturbation"])
    return list(ranked.index[ranked[f"count_{direction}"].to_numpy() > 0][:k])


def unique_top_genes(per_sample: pd.DataFrame) -> dict[str, int]:
    """The paper's consistency figure: the number of distinct genes in any sample's top-k up and down lists."""
    return {"unique_top_up": int(per_sample.loc[per_sample["direction"] == "up", "gene"].nunique()),
            "unique_top_down": int(per_sample.loc[per_sample["direction"] == "down", "gene"].nunique())}
