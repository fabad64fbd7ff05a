import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from tspg import pl


def _suptitle(fig):
    return fig._suptitle.get_text() if fig._suptitle is not None else ""  # Figure.get_suptitle is matplotlib >= 3.8


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
    assert _suptitle(fig) == "Transitions to Liver"


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


# --- no backend side effects; scanpy-style ax= / fig= / return_fig= ---------------------------------------------

_BACKEND_KEPT = """
import sys, tempfile, pathlib
import matplotlib
before = (matplotlib.get_backend(), matplotlib.rcParams["backend"])
import tspg, tspg.pl
from matplotlib.figure import Figure
fig = Figure()
fig.add_subplot().plot([0, 1])
tspg.pl.save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "f")
after = (matplotlib.get_backend(), matplotlib.rcParams["backend"])
assert after == before, (before, after)
print(before[0])
"""

_BACKEND_UNRESOLVED = """
import sys, tempfile, pathlib
import matplotlib
import tspg, tspg.pl
from matplotlib.figure import Figure
fig = Figure()
fig.add_subplot().plot([0, 1])
tspg.pl.save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "f")
assert "matplotlib.pyplot" not in sys.modules, "tspg.pl imported pyplot"
assert matplotlib.rcParams._get_backend_or_none() is None, matplotlib.rcParams._get_backend_or_none()
"""


def _run_python(code, mplbackend):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if mplbackend is not None:
        env["MPLBACKEND"] = mplbackend
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mplbackend", [None, "svg"])
def test_importing_and_saving_keeps_the_matplotlib_backend(mplbackend):
    res = _run_python(_BACKEND_KEPT, mplbackend)
    assert res.returncode == 0, res.stderr
    if mplbackend is not None:
        assert res.stdout.strip() == mplbackend


def test_importing_and_saving_neither_imports_pyplot_nor_picks_a_backend():
    res = _run_python(_BACKEND_UNRESOLVED, None)
    assert res.returncode == 0, res.stderr


def test_a_saved_figure_is_freed_without_pyplot(tmp_path):
    import gc
    import weakref

    x, p, mu, genes = _data(20)
    fig = pl.heatmap(x, p, mu, genes, "S", "A", "T")
    pl.save_figure(fig, tmp_path / "h")
    ref = weakref.ref(fig)
    del fig
    gc.collect()
    assert ref() is None


def _tsne_inputs():
    rng = np.random.default_rng(0)
    orig = pd.DataFrame(rng.normal(size=(30, 2)), index=[f"s{i}" for i in range(30)], columns=["tsne1", "tsne2"])
    labels = pd.Series(["A"] * 10 + ["B"] * 10 + ["T"] * 10, index=orig.index)
    pert = pd.DataFrame(rng.normal(size=(5, 2)), index=[f"s{i}" for i in range(5)], columns=["tsne1", "tsne2"])
    return orig, labels, pert, labels.loc[pert.index], "T"


_HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "loss": [10.0, 1.0, 0.1], "acc": [0.5, 0.9, 1.0]})


def _single_panel_calls():
    x, p, mu, genes = _data(50)
    return {
        "tsne": lambda **kw: pl.tsne(*_tsne_inputs(), **kw),
        "heatmap": lambda **kw: pl.heatmap(x, p, mu, genes, "S", "A", "T", **kw),
        "heatmap_panel": lambda **kw: pl.heatmap_panel([("S", "A", x, p)], mu, genes, "T", **kw),
        "history": lambda **kw: pl.history(_HISTORY, columns=["loss"], **kw),
    }


def _has_artists(ax):
    return bool(ax.images or ax.collections or ax.lines)


@pytest.mark.parametrize("name", ["tsne", "heatmap", "heatmap_panel", "history"])
@pytest.mark.parametrize("in_subfigure", [False, True])
def test_ax_draws_into_the_given_axes(name, in_subfigure):
    from matplotlib.figure import Figure

    call = _single_panel_calls()[name]
    fig = Figure()
    parent = fig.subfigures(1, 2)[1] if in_subfigure else fig
    other = fig.add_subplot(2, 2, 1)  # an axes of the caller's that must stay as it is
    ax = parent.add_subplot(2, 2, 4)
    assert call(ax=ax) is fig
    assert _has_artists(ax) and not _has_artists(other)
    assert _suptitle(fig) == _suptitle(parent) == ""  # the caller's figure gets no title
    assert ax.figure is parent and other.figure is fig
    ax2 = Figure().add_subplot()
    drawn = call(ax=ax2, return_fig=False)
    # one axes for the single-axes plots; always a list (one per block / column) for the panel layouts
    assert (drawn == [ax2]) if name in ("heatmap_panel", "history") else (drawn is ax2)
    assert _has_artists(ax2)


def test_ax_draws_what_the_default_figure_draws():
    from matplotlib.figure import Figure

    x, p, mu, genes = _data(100)
    ax = Figure().add_subplot()
    pl.heatmap(x, p, mu, genes, "S7", "Lung", "Liver", ax=ax)
    own = pl.heatmap(x, p, mu, genes, "S7", "Lung", "Liver").axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), own.images[0].get_array())
    assert ax.get_title() == own.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == [t.get_text() for t in own.get_yticklabels()]
    assert len(ax.figure.axes) == 2  # the axes and its colour bar


def test_ax_is_refused_for_layouts_of_several_axes():
    from matplotlib.figure import Figure

    x, p, mu, genes = _data(50)
    ax = Figure().add_subplot()
    with pytest.raises(ValueError, match="fig="):
        pl.heatmap(x, p, mu, genes, "S", "A", "T", units="expr", ax=ax)
    with pytest.raises(ValueError, match="fig="):
        pl.heatmap_panel([("a", "A", x, p), ("b", "B", x, p)], mu, genes, "T", ax=ax)
    with pytest.raises(ValueError, match="fig="):
        pl.history(_HISTORY, ax=ax)
    with pytest.raises(ValueError, match="not both"):
        pl.tsne(*_tsne_inputs(), ax=ax, fig=ax.figure)
    assert not ax.figure.axes[0].has_data() and len(ax.figure.axes) == 1  # nothing was drawn


def test_fig_draws_several_axes_into_a_subfigure():
    from matplotlib.figure import Figure

    x, p, mu, genes = _data(50)
    fig = Figure(layout="constrained")
    left, right = fig.subfigures(1, 2)
    assert pl.heatmap(x, p, mu, genes, "S", "A", "T", units="expr", fig=left) is fig
    axes = pl.history(_HISTORY, fig=right, return_fig=False)
    assert [a.get_title() for a in axes] == ["loss", "acc"]
    assert all(a.figure is right for a in axes)
    assert len([a for a in fig.axes if a.images]) == 4
    assert _suptitle(left).endswith("(original units)") and _suptitle(right) == "Training history"
    assert pl.figure_bytes(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_return_fig_false_returns_the_axes_drawn_on():
    from matplotlib.axes import Axes

    x, p, mu, genes = _data(50)
    x2, p2, _, _ = _data(50, seed=5)
    ax = pl.tsne(*_tsne_inputs(), return_fig=False)
    assert isinstance(ax, Axes) and ax is ax.figure.axes[0] and ax.get_legend() is not None
    ax = pl.heatmap(x, p, mu, genes, "S", "A", "T", return_fig=False)
    assert isinstance(ax, Axes) and ax.images
    axes = pl.heatmap(x, p, mu, genes, "S", "A", "T", units="expr", return_fig=False)
    assert len(axes) == 4 and [a.get_xticklabels()[0].get_text() for a in axes] == ["X", "P", "X+P", "mu_T"]
    axes = pl.heatmap_panel([("a", "Lung", x, p), ("b", "Heart", x2, p2)], mu, genes, "T", return_fig=False)
    assert len(axes) == 2 and "Heart" in axes[1].get_title()
    assert len(pl.heatmap_panel([("a", "Lung", x, p)], mu, genes, "T", return_fig=False)) == 1
    axes = pl.history(_HISTORY, return_fig=False)
    assert [a.get_title() for a in axes] == ["loss", "acc"] and all(isinstance(a, Axes) for a in axes)
