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


def perturb_anndata(model: object, adata: object, target: str, *, layer: str | None = None, use_raw: bool = False,
                    labels_key: str | None = None, key_added: str = "tspg", copy: bool = False):  # noqa: ANN201
    """Perturb the samples of an AnnData object towards ``target`` and write the results into it (scanpy style).

    The samples are read as the model reads any new data (:meth:`tspg.TSPG.perturb`: genes matched by name,
    the run's transform and fill applied). Keys written, ``K`` being ``key_added``:

    - ``obsm[f'{K}_perturbation']``, ``obsm[f'{K}_perturbed']``: ``x_adv - x`` and ``x_adv`` as DataFrames
      (samples x the model's genes, in the model's expression units);
    - ``layers[f'{K}_perturbation']``, ``layers[f'{K}_perturbed']``: the same at the matrix's full shape, where
      the model's genes are all among ``var_names``, the matrix read is ``.X`` or a layer (not ``.raw``) and the
      run has no transform (so that its units are the matrix's); genes outside the model move by 0;
    - ``obs[f'{K}_predicted_before']``, ``obs[f'{K}_predicted_after']`` (f's class),
      ``obs[f'{K}_prob_target_before']``, ``obs[f'{K}_prob_target_after']``;
    - ``uns[K]``: ``target``, ``expression_units``, ``genes`` (the model's) and ``metrics``
      (:meth:`tspg.model.Perturbation.metrics`).

    Parameters
    ----------
    model
        A fitted :class:`tspg.TSPG` with a generator for ``target``.
    adata
        An :class:`anndata.AnnData`.
    target
        The target class.
    layer, use_raw
        Read ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``.X``.
    labels_key
        An ``.obs`` column of true classes, for the per-source metrics (optional).
    key_added
        Prefix of every key written.
    copy
        Work on a copy and return it; otherwise write into ``adata`` and return None.

    Examples
    --------
    >>> import anndata as ad
    >>> from tspg import TSPG
    >>> from tspg.data import from_anndata, make_atlas
    >>> from tspg.train import ClassifierConfig, GeneratorConfig
    >>> atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=10, n_markers=5, seed=0)
    >>> adata = ad.AnnData(atlas.gem.to_numpy(), obs=atlas.labels.rename("tissue").to_frame())
    >>> adata.var_names = list(atlas.gem.columns)
    >>> model = TSPG(ClassifierConfig(epochs=2), GeneratorConfig(epochs=1), progress=False, device="cpu")
    >>> model = model.fit(from_anndata(adata, "tissue"), targets=["Liver"])
    >>> perturb_anndata(model, adata, "Liver")
    >>> adata.layers["tspg_perturbation"].shape, "tspg_predicted_after" in adata.obs
    ((30, 60), True)
    """
    from tspg.data import TRANSFORM_UNITS
    from tspg.data._gem import anndata_matrix
    from tspg.data._labels import labels_from_obs

    if copy:
        adata = adata.copy()
    gem = anndata_matrix(adata, layer, use_raw)
    labels = labels_from_obs(adata.obs, labels_key, "the AnnData object") if labels_key else None
    result = model.perturb(gem, target, labels=labels, source="the AnnData object", external=True)
    delta, perturbed = result.perturbation_expr, result.perturbed_expr
    k = key_added
    adata.obsm[f"{k}_perturbation"] = delta.set_axis(adata.obs_names, axis=0)
    adata.obsm[f"{k}_perturbed"] = perturbed.set_axis(adata.obs_names, axis=0)
    genes = pd.Index(model.genes)
    if not use_raw and model.transform == "none" and genes.isin(adata.var_names).all():
        full = np.zeros((adata.n_obs, adata.n_vars), dtype=np.float32)
        full[:, adata.var_names.get_indexer(genes)] = delta.to_numpy(np.float32)
        adata.layers[f"{k}_perturbation"] = full
        adata.layers[f"{k}_perturbed"] = gem.to_numpy(np.float32) + full
    pred = result.predictions
    for col in ("predicted_before", "predicted_after"):
        adata.obs[f"{k}_{col}"] = pd.Categorical(pred[col].to_numpy(), categories=model.classes)
    for col in ("prob_target_before", "prob_target_after"):
        adata.obs[f"{k}_{col}"] = pred[col].to_numpy(np.float32)
    adata.uns[k] = _h5ad_safe({"target": target, "expression_units": TRANSFORM_UNITS[model.transform],
                               "genes": list(model.genes), "metrics": result.metrics()})
    return adata if copy else None
