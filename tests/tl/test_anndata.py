import anndata as ad
import numpy as np
import pandas as pd
import pytest

from tspg import tl


def _frames():
    rng = np.random.default_rng(0)
    samples, genes = [f"s{i}" for i in range(6)], ["A", "B", "C"]
    x = pd.DataFrame(rng.uniform(0, 5, (6, 3)), index=samples, columns=genes).astype(np.float32)
    adv = (x + rng.normal(size=(6, 3))).astype(np.float32)
    pred = pd.DataFrame({"label": ["L", "L", "H", "H", None, "H"], "part": ["test"] * 5 + ["external"],
                         "predicted_before": list("LLHHHH"), "predicted_after": list("TTTTHT"),
                         "prob_target_before": 0.1, "prob_target_after": 0.9}, index=samples)
    tsne = pd.DataFrame({"tsne1": np.arange(6.0), "tsne2": -np.arange(6.0), "before_tsne1": 1.0,
                         "before_tsne2": 2.0}, index=samples[::-1])
    return x, adv, pred, tsne


def test_anndata_keys_and_values_round_trip(tmp_path):
    x, adv, pred, tsne = _frames()
    adata = tl.to_anndata(x, adv, pred, "T", tsne=tsne, metrics={"perturbation_accuracy": 0.8, "note": None,
                                                                "consensus_up": ["A", "B"]}, run={"seed": 3})
    path = tmp_path / "r.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert list(back.obs_names) == list(x.index) and list(back.var_names) == ["A", "B", "C"]
    np.testing.assert_array_equal(back.X, x.to_numpy())
    np.testing.assert_array_equal(back.layers["tspg_perturbed"], adv.to_numpy())
    np.testing.assert_allclose(back.layers["tspg_perturbation"], adv.to_numpy() - x.to_numpy(), atol=1e-6)
    assert list(back.obs["predicted_after"]) == list("TTTTHT")
    assert list(back.obs["label"].astype(str)) == ["L", "L", "H", "H", "NA", "H"]
    assert (back.obs["tspg_target"] == "T").all()
    # t-SNE rows follow obs order, not the order of the table given
    np.testing.assert_array_equal(back.obsm["X_tspg_tsne"][:, 0], [5, 4, 3, 2, 1, 0])
    assert back.obsm["X_tspg_tsne_before"].shape == (6, 2)
    assert back.uns["tspg"]["target"] == "T" and back.uns["tspg"]["run"]["seed"] == 3
    assert back.uns["tspg"]["metrics"]["perturbation_accuracy"] == 0.8
    assert list(back.uns["tspg"]["metrics"]["consensus_up"]) == ["A", "B"]


def test_anndata_rejects_mismatched_frames():
    x, adv, pred, _ = _frames()
    with pytest.raises(ValueError, match="same samples"):
        tl.to_anndata(x, adv.iloc[::-1], pred, "T")
