"""Results as AnnData, under named keys, for scanpy users."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd


def _h5ad_safe(obj: object) -> object:
    """Make a JSON-like value storable in ``uns`` (no None, no NaN; lists of mixed types as strings)."""
    if isinstance(obj, dict):
        return {str(k): _h5ad_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        items = [v for v in obj if v is not None]
        if all(isinstance(v, str) for v in items) or all(isinstance(v, int | float) and not isinstance(v, bool)
                                                          for v in items):
            return np.asarray(items) if items else np.asarray([], dtype=str)
        return json.dumps(items)
    if isinstance(obj, float) and math.isnan(obj):
        return "nan"
    return obj


def to_anndata(
    x_expr: pd.DataFrame,
    perturbed_expr: pd.DataFrame,
    predictions: pd.DataFrame,
    target: str,
    tsne: pd.DataFrame | None = None,
    metrics: dict | None = None,
    run: dict | None = None,
):  # noqa: ANN201 (anndata is imported lazily)
    """An AnnData of perturbed samples (obs) x genes (var).

    Keys written:

    - ``X``: the samples before the perturbation (original units);
    - ``layers['tspg_perturbed']``: x + P (original units); ``layers['tspg_perturbation']``: P;
    - ``obs``: the columns of ``predictions`` (``label``, ``part``, ``predicted_before``, ``predicted_after``,
      ``prob_target_before``, ``prob_target_after``) and ``tspg_target``;
    - ``obsm['X_tspg_tsne']``: the perturbed samples' t-SNE positions (rows without one are NaN) and
      ``obsm['X_tspg_tsne_before']`` where ``tsne`` has ``before_tsne1/2`` columns;
    - ``uns['tspg']``: the target, the target's metrics and run facts (``run``).

    Parameters
    ----------
    x_expr, perturbed_expr
        Samples x genes, original units, same index and columns.
    predictions
        Per-sample table indexed by sample.
    target
        The target class.
    tsne
        ``tsne1``, ``tsne2`` (and optionally ``before_tsne1``, ``before_tsne2``) per sample.
    metrics, run
        Stored under ``uns['tspg']['metrics']`` and ``uns['tspg']['run']``.

    Returns
    -------
    The :class:`anndata.AnnData`.
    """
    import anndata as ad

    if not x_expr.index.equals(perturbed_expr.index) or not x_expr.columns.equals(perturbed_expr.columns):
        raise ValueError("x_expr and perturbed_expr must have the same samples and genes")
    obs = predictions.reindex(x_expr.index).copy()
    obs.index = obs.index.astype(str)
    obs.index.name = None
    for col in obs.columns:
        if not pd.api.types.is_numeric_dtype(obs[col]):
            obs[col] = pd.Categorical(obs[col].astype(object).where(obs[col].notna(), "NA").astype(str))
    obs["tspg_target"] = pd.Categorical([target] * len(obs))
    var = pd.DataFrame(index=pd.Index([str(g) for g in x_expr.columns]))
    x = x_expr.to_numpy(dtype=np.float32)
    x_adv = perturbed_expr.to_numpy(dtype=np.float32)
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.layers["tspg_perturbed"] = x_adv
    adata.layers["tspg_perturbation"] = x_adv - x
    if tsne is not None:
        t = tsne.reindex(obs.index)
        adata.obsm["X_tspg_tsne"] = t[["tsne1", "tsne2"]].to_numpy(dtype=np.float32)
        if {"before_tsne1", "before_tsne2"} <= set(t.columns):
            adata.obsm["X_tspg_tsne_before"] = t[["before_tsne1", "before_tsne2"]].to_numpy(dtype=np.float32)
    adata.uns["tspg"] = _h5ad_safe({"target": target, "metrics": metrics or {}, "run": run or {}})
    return adata
