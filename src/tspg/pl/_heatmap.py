"""Heatmaps of one sample's transition: X, P, X + P and the target mean, genes sorted by P."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from tspg.pl._canvas import canvas_for, root

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure

COLUMNS = ("X", "P", "X+P", "mu_T")


def rows_to_show(order_values: np.ndarray, max_rows: int = 60, n_edge: int = 20) -> np.ndarray:
    """Indices of the genes to draw, sorted by ``order_values`` (largest first).

    All genes when there are at most ``max_rows``; else the ``n_edge`` largest and the ``n_edge`` smallest.

    Examples
    --------
    >>> rows_to_show(np.array([0.1, -0.5, 0.9]), max_rows=60).tolist()
    [2, 0, 1]
    """
    order = np.argsort(-np.asarray(order_values, dtype=np.float64), kind="stable")
    if len(order) > max_rows:
        order = np.concatenate([order[:n_edge], order[-n_edge:]])
    return order


def _matrix(x: np.ndarray, p: np.ndarray, mu: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.stack([x[rows], p[rows], x[rows] + p[rows], mu[rows]], axis=1)


def _gene_axis(ax, genes: np.ndarray, rows: np.ndarray, n_total: int, show: bool = True) -> None:  # noqa: ANN001
    if show:
        ax.set_yticks(np.arange(len(rows)), [str(genes[i]) for i in rows], fontsize=6 if len(rows) > 30 else 7)
    else:
        ax.set_yticks([])
    if n_total > len(rows):
        half = len(rows) // 2
        ax.axhline(half - 0.5, color="black", lw=1.2)


def heatmap(
    x: np.ndarray,
    p: np.ndarray,
    mu_target: np.ndarray,
    genes: list[str],
    sample: str,
    source: str,
    target: str,
    units: str = "scaled",
    max_rows: int = 60,
    n_edge: int = 20,
    *,
    ax: Axes | None = None,
    fig: Figure | SubFigure | None = None,
    return_fig: bool = True,
) -> Figure | Axes | list[Axes]:
    """Heatmap of one sample: columns X, P, X + P and mu_T, genes (rows) sorted by P, largest first.

    With more than ``max_rows`` genes only the ``n_edge`` most raised and ``n_edge`` most lowered are drawn (a
    line separates the two groups). In ``scaled`` units all four columns share a diverging colour map fixed to
    [-1, 1], as in the paper's figures; in ``expr`` (original) units X, X + P and mu_T share a sequential map and
    P has its own diverging map centred on 0.

    Parameters
    ----------
    x, p, mu_target
        The sample, its perturbation and the target class's mean, one value per gene, in ``units``.
    genes
        Gene names.
    sample, source, target
        Named in the title.
    units
        ``scaled`` or ``expr``.
    max_rows, n_edge
        See above.
    ax
        Draw into this axes (of a figure of yours) instead of a new figure, with the colour bar beside it; only for
        ``units="scaled"``, a single axes. The ``expr`` form is four axes: a ``ValueError`` points to ``fig``.
    fig
        Draw into this figure or subfigure (e.g. one of ``Figure.subfigures``) instead of a new one; not together
        with ``ax``. Its layout engine is left as it is (tspg's own figures use constrained layout).
    return_fig
        Return the figure (the top-level one holding ``ax`` or ``fig``, if given); else the axes drawn on: the
        heatmap's axes for ``scaled``, the list of the four column axes for ``expr`` (colour bars not included).

    Returns
    -------
    The figure, or the axes with ``return_fig=False``.
    """
    if units not in ("scaled", "expr"):
        raise ValueError(f"units must be 'scaled' or 'expr', not {units!r}")
    parent, ax = canvas_for(f"heatmap(units={units!r})", ax, fig, 1 if units == "scaled" else 4)
    x, p, mu = (np.asarray(v, dtype=np.float64) for v in (x, p, mu_target))
    genes_arr = np.asarray(genes, dtype=object)
    rows = rows_to_show(p, max_rows, n_edge)
    m = _matrix(x, p, mu, rows)
    height = max(3.0, 0.16 * len(rows) + 1.4)
    title = f"{sample} ({source}) to {target}"
    if units == "scaled":
        fig = parent if parent is not None else Figure(figsize=(4.2, height), layout="constrained")
        ax = ax if ax is not None else fig.add_subplot()
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks(range(4))
        ax.set_xticklabels(COLUMNS, fontsize=8)
        _gene_axis(ax, genes_arr, rows, len(genes_arr))
        fig.colorbar(im, ax=ax, shrink=0.6, label="scaled units")
        ax.set_title(title, fontsize=9)
        drawn = ax
    else:
        fig = parent if parent is not None else Figure(figsize=(6.0, height + 0.6), layout="constrained")
        axes = fig.subplots(1, 4)
        level = m[:, [0, 2, 3]]
        lo, hi = float(np.nanmin(level)), float(np.nanmax(level))
        bound = float(np.nanmax(np.abs(m[:, 1]))) or 1.0
        for j, ax in enumerate(axes):
            if j == 1:
                im = ax.imshow(m[:, [1]], aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound,
                               interpolation="nearest")
                cb = fig.colorbar(im, ax=ax, location="bottom", shrink=0.9, aspect=8, label="P")
                cb.set_ticks([-bound, 0.0, bound], labels=[f"{-bound:.2g}", "0", f"{bound:.2g}"])
            else:
                im = ax.imshow(m[:, [j]], aspect="auto", cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
                if j == 3:
                    fig.colorbar(im, ax=list(axes[[0, 2, 3]]), location="right", shrink=0.6, label="expression")
            ax.set_xticks([0])
            ax.set_xticklabels([COLUMNS[j]], fontsize=8)
            _gene_axis(ax, genes_arr, rows, len(genes_arr), show=j == 0)
        fig.suptitle(f"{title} (original units)", fontsize=9)
        drawn = list(axes)
    return root(fig) if return_fig else drawn


def heatmap_panel(
    samples: list[tuple[str, str, np.ndarray, np.ndarray]],
    mu_target: np.ndarray,
    genes: list[str],
    target: str,
    n_edge: int = 20,
    *,
    ax: Axes | None = None,
    fig: Figure | SubFigure | None = None,
    return_fig: bool = True,
) -> Figure | list[Axes]:
    """The paper's Figures 3-4: one sample from each of several source classes, side by side, to one target.

    Every block has the columns X, P, X + P and mu_T on the same gene rows: the ``n_edge`` genes with the largest
    and smallest mean P over the shown samples (all genes if there are at most ``2 * n_edge``), in scaled units
    on a diverging colour map fixed to [-1, 1].

    Parameters
    ----------
    samples
        ``(sample, source, x, p)`` per block (scaled units).
    mu_target
        The target class's mean (scaled units).
    genes
        Gene names.
    target
        The target class.
    n_edge
        Genes per direction.
    ax
        Draw into this axes (of a figure of yours) instead of a new figure, with the colour bar beside it; only
        with one sample, a single axes (else a ``ValueError`` points to ``fig``). The figure title ("Transitions to
        <target>") is then not drawn: the caller's figure is left alone.
    fig
        Draw into this figure or subfigure (e.g. one of ``Figure.subfigures``) instead of a new one, title
        included; not together with ``ax``. Its layout engine is left as it is (tspg's own figures use
        constrained layout).
    return_fig
        Return the figure (the top-level one holding ``ax`` or ``fig``, if given); else the list of the blocks'
        axes, one per sample (colour bar not included).

    Returns
    -------
    The figure, or the list of axes with ``return_fig=False``.
    """
    if not samples:
        raise ValueError("no samples to draw")
    parent, given = canvas_for("heatmap_panel", ax, fig, len(samples))
    mu = np.asarray(mu_target, dtype=np.float64)
    mean_p = np.mean([np.asarray(s[3], dtype=np.float64) for s in samples], axis=0)
    rows = rows_to_show(mean_p, 2 * n_edge, n_edge)
    genes_arr = np.asarray(genes, dtype=object)
    height = max(3.0, 0.16 * len(rows) + 1.6)
    fig = parent if parent is not None else Figure(figsize=(1.6 + 2.0 * len(samples), height), layout="constrained")
    axes = [given] if given is not None else list(np.atleast_1d(fig.subplots(1, len(samples))))
    im = None
    for j, (ax, (name, source, x, p)) in enumerate(zip(axes, samples, strict=True)):
        m = _matrix(np.asarray(x, dtype=np.float64), np.asarray(p, dtype=np.float64), mu, rows)
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks(range(4))
        ax.set_xticklabels(COLUMNS, fontsize=7, rotation=90)
        _gene_axis(ax, genes_arr, rows, len(genes_arr), show=j == 0)
        ax.set_title(f"{source}\n{name}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.5, label="scaled units")
    if given is None:
        fig.suptitle(f"Transitions to {target}", fontsize=10)
    return root(fig) if return_fig else axes
