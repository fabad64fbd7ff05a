"""AnnData in memory: a Dataset from an AnnData object, and results written back into it under named keys."""

import doctest

import anndata as ad
import numpy as np
import pytest

from tspg import TSPG
from tspg.data import InputError, from_anndata, make_atlas
from tspg.tl import perturb_anndata
from tspg.train import ClassifierConfig, GeneratorConfig


@pytest.fixture(scope="module")
def fitted():
    atlas = make_atlas(n_classes=3, n_genes=90, samples_per_class=20, n_markers=8, seed=12)
    adata = ad.AnnData(atlas.gem.to_numpy(), obs=atlas.labels.rename("tissue").to_frame())
    adata.var_names = list(atlas.gem.columns)
    adata.layers["doubled"] = adata.X * 2
    adata.raw = adata[:, :70].copy()  # .raw with fewer genes, as after scanpy's gene filtering (reversed here)
    model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=2), seed=0, progress=False, device="cpu")
    model.fit(from_anndata(adata, "tissue"), targets=["Liver"])
    return adata, model, atlas


def test_from_anndata_reads_x_a_layer_or_raw_without_files(fitted):
    adata, _, atlas = fitted
    ds = from_anndata(adata, "tissue")
    assert ds.gem.equals(atlas.gem.astype(np.float32)) and (ds.labels == atlas.labels).all()
    np.testing.assert_array_equal(from_anndata(adata, "tissue", layer="doubled").gem.to_numpy(), 2 * adata.X)
    assert from_anndata(adata, "tissue", use_raw=True).gem.shape == (60, 70)
    assert ds.sources["data"] == "AnnData in memory"
    with pytest.raises(InputError, match="no .obs column 'cell_type'"):
        from_anndata(adata, "cell_type")
    with pytest.raises(InputError, match="no layer 'counts'"):
        from_anndata(adata, "tissue", layer="counts")


def test_results_go_back_into_the_object_under_the_prefix(fitted, tmp_path):
    adata, model, atlas = fitted
    out = perturb_anndata(model, adata, "Liver", labels_key="tissue", key_added="liver", copy=True)
    assert "liver_perturbation" not in adata.layers  # copy=True left the original as it was
    expected = model.perturb(atlas.gem, "Liver")
    np.testing.assert_allclose(out.obsm["liver_perturbation"].to_numpy(), expected.perturbation_expr.to_numpy())
    np.testing.assert_allclose(out.layers["liver_perturbed"], out.X + out.layers["liver_perturbation"], atol=1e-6)
    assert list(out.obs["liver_predicted_after"].cat.categories) == model.classes
    assert (out.obs["liver_predicted_after"] == expected.predictions["predicted_after"].to_numpy()).all()
    assert out.uns["liver"]["target"] == "Liver" and out.uns["liver"]["expression_units"] == "the input's units"
    assert set(out.uns["liver"]["metrics"]["by_source"]) == set(model.classes)
    out.write_h5ad(tmp_path / "x.h5ad")  # every key is storable


def test_raw_without_the_model_s_genes_is_refused_and_any_gene_order_is_matched(fitted):
    adata, model, _ = fitted
    with pytest.raises(InputError, match="lacks 20 of the model's 90 genes"):
        perturb_anndata(model, adata, "Liver", use_raw=True)
    sub = adata[:, ::-1].copy()  # another gene order: matched by name
    perturb_anndata(model, sub, "Liver")
    assert sub.layers["tspg_perturbation"].shape == sub.shape
    np.testing.assert_allclose(sub.layers["tspg_perturbation"][:, ::-1], sub.obsm["tspg_perturbation"].to_numpy(),
                               atol=1e-7)


@pytest.mark.parametrize("module", ["tspg.tl._anndata", "tspg.data._dataset"])
def test_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
