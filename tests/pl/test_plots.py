import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from tspg import pl


def _data(n_genes=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n_genes)
    p = rng.normal(0, 0.3, n_genes)
    mu = rng.uniform(0, 1, n_genes)
    genes = [f"G{i:03d}" for i in range(n_genes)]
    return x, p, mu, genes


def test_rows_to_show_sorts_by_p_and_keeps_both_ends():
    p = np.array([0.3, -0.9, 0.0, 0.8, -0.1])
    assert pl.rows_to_show(p).tolist() == [3, 0, 2, 4, 1]
    rng = np.random.default_rng(1)
    big = rng.normal(size=200)
    rows = pl.rows_to_show(big, max_rows=60, n_edge=20)
    order = np.argsort(-big)
    assert len(rows) == 40
    assert rows[:20].tolist() == order[:20].tolist() and rows[20:].tolist() == order[-20:].tolist()


@pytest.mark.parametrize("n_genes", [30, 100])
def test_heatmap_draws_the_given_sample_in_paper_scale(n_genes):
    x, p, mu, genes = _data(n_genes)
    fig = pl.heatmap(x, p, mu, genes, "S7", "Lung", "Liver")
    ax = fig.axes[0]
    img = ax.images[0]
    rows = pl.rows_to_show(p)
    m = np.asarray(img.get_array())
    np.testing.assert_allclose(m[:, 0], x[rows])
    np.testing.assert_allclose(m[:, 1], p[rows])
    np.testing.assert_allclose(m[:, 2], x[rows] + p[rows])
    np.testing.assert_allclose(m[:, 3], mu[rows])
    assert img.get_clim() == (-1, 1)  # the paper's fixed diverging scale
    assert [t.get_text() for t in ax.get_xticklabels()] == ["X", "P", "X+P", "mu_T"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [genes[i] for i in rows]
    assert len(labels) == (n_genes if n_genes <= 60 else 40)
    assert "S7" in ax.get_title() and "Lung" in ax.get_title() and "Liver" in ax.get_title()


def test_heatmap_in_original_units_has_a_centred_p_scale():
    x, p, mu, genes = _data(50)
    fig = pl.heatmap(x * 10, p * 10, mu * 10, genes, "S1", "Lung", "Liver", units="expr")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    lo, hi = images[1].get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(p * 10).max())
    assert images[0].get_clim() == images[2].get_clim() == images[3].get_clim()
    with pytest.raises(ValueError, match="units"):
        pl.heatmap(x, p, mu, genes, "S1", "Lung", "Liver", units="log")


def test_panel_uses_shared_rows_from_the_mean_perturbation():
    x, p, mu, genes = _data(100)
    x2, p2, _, _ = _data(100, seed=5)
    fig = pl.heatmap_panel([("a", "Lung", x, p), ("b", "Heart", x2, p2)], mu, genes, "Liver", n_edge=10)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 2
    rows = pl.rows_to_show((p + p2) / 2, 20, 10)
    np.testing.assert_allclose(np.asarray(axes[1].images[0].get_array())[:, 1], p2[rows])
    assert "Heart" in axes[1].get_title()


@pytest.mark.parametrize("n", [3, 10, 20, 53])
def test_class_colours_do_not_repeat(n):
    colors = pl.class_colors([f"c{i}" for i in range(n)])
    assert len({mcolors.to_hex(c) for c in colors.values()}) == n


def test_tsne_figure_marks_perturbed_and_original_positions():
    rng = np.random.default_rng(0)
    orig = pd.DataFrame(rng.normal(size=(30, 2)), index=[f"s{i}" for i in range(30)], columns=["tsne1", "tsne2"])
    labels = pd.Series(["A"] * 10 + ["B"] * 10 + ["T"] * 10, index=orig.index)
    pert = pd.DataFrame(rng.normal(size=(5, 2)), index=[f"s{i}" for i in range(5)], columns=["tsne1", "tsne2"])
    fig = pl.tsne(orig, labels, pert, labels.loc[pert.index], "T")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "T (target)" in texts and any("perturbed to T" in t for t in texts) and any("before" in t for t in texts)
    # one line per perturbed sample from its original position to its perturbed position
    segs = ax.collections[-3].get_segments()
    assert len(segs) == 5
    np.testing.assert_allclose(segs[0], [orig.loc["s0"].to_numpy(), pert.loc["s0"].to_numpy()])


def test_history_uses_log_scale_only_for_positive_wide_ranges():
    table = pd.DataFrame({"epoch": [1, 2, 3], "loss": [10.0, 1.0, 0.1], "acc": [0.5, 0.9, 1.0],
                          "adv": [-1.0, -4.0, -5.0]})
    fig = pl.history(table, best_epoch=2)
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.axes}
    assert scales == {"loss": "log", "acc": "linear", "adv": "linear"}


def test_saved_figures_are_byte_identical_across_calls(tmp_path):
    x, p, mu, genes = _data(40)
    a = pl.save_figure(pl.heatmap(x, p, mu, genes, "S", "A", "T"), tmp_path / "a")
    b = pl.save_figure(pl.heatmap(x, p, mu, genes, "S", "A", "T"), tmp_path / "b")
    assert [q.suffix for q in a] == [".png", ".svg"]
    for qa, qb in zip(a, b, strict=True):
        assert qa.read_bytes() == qb.read_bytes()
    assert a[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
