"""The t-SNE figure: original samples by class, perturbed samples and where they came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tspg.pl._canvas import canvas_for, root
from tspg.pl._palette import class_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure


def tsne(
    original: pd.DataFrame,
    labels: pd.Series,
    perturbed: pd.DataFrame,
    sources: pd.Series,
    target: str,
    perturbed_from: pd.DataFrame | None = None,
    classes: list[str] | None = None,
    title: str | None = None,
    *,
    ax: Axes | None = None,
    fig: Figure | SubFigure | None = None,
    return_fig: bool = True,
) -> Figure | Axes:
    """Draw a t-SNE map (see :func:`tspg.tl.tsne_map`).

    Original samples are filled circles coloured by class; perturbed samples are crosses in the colour of their
    SOURCE class, and a thin line joins each one to its original position (hollow circle), so both ends of every
    transition are visible. The target class's samples are drawn last among the originals. The legend sits
    outside the axes.

    Parameters
    ----------
    original
        Map positions of original samples (``tsne1``, ``tsne2``).
    labels
        Class of each original sample.
    perturbed
        Map positions of perturbed samples.
    sources
        Source class of each perturbed sample.
    target
        The target class.
    perturbed_from
        Map positions of the perturbed samples' originals (default: looked up in ``original``).
    classes
        Classes in legend order (default: sorted classes of ``labels``).
    title
        Axes title.
    ax
        Draw into this axes (of a figure of yours) instead of a new figure; its figure's layout is left alone.
    fig
        Draw into a new axes of this figure or subfigure (e.g. one of ``Figure.subfigures``) instead of a new
        figure; not together with ``ax``.
    return_fig
        Return the figure (the top-level one holding ``ax`` or ``fig``, if given); else the axes drawn on.

    Returns
    -------
    The figure, or the axes with ``return_fig=False``.
    """
    parent, ax = canvas_for("tsne", ax, fig, 1)
    classes = classes or sorted(labels.unique())
    colors = class_colors(classes)
    if parent is None:
        fig = Figure(figsize=(8.5, 6.0))
        ax = fig.add_subplot()
    elif ax is None:
        ax = parent.add_subplot()
    lab = labels.reindex(original.index)
    for c in [c for c in classes if c != target] + ([target] if target in classes else []):
        pts = original[lab == c]
        ax.scatter(pts["tsne1"], pts["tsne2"], s=12, color=colors[c], alpha=0.55, linewidths=0,
                   label=f"{c} (target)" if c == target else c, zorder=1)
    src = sources.reindex(perturbed.index)
    start = perturbed_from if perturbed_from is not None else original.reindex(perturbed.index)
    if len(perturbed):
        ok = start.notna().all(axis=1)
        a, b = start[ok].to_numpy(), perturbed[ok].to_numpy()
        segs = np.stack([a, b], axis=1)
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segs, colors="0.45", linewidths=0.5, alpha=0.5, zorder=2))
        ax.scatter(a[:, 0], a[:, 1], s=28, facecolors="none", edgecolors="0.2", linewidths=0.7, zorder=3,
                   label="perturbed samples, before")
        pcol = [colors.get(s, (0.3, 0.3, 0.3, 1.0)) for s in src]
        ax.scatter(perturbed["tsne1"], perturbed["tsne2"], s=34, marker="X", c=pcol, edgecolors="black",
                   linewidths=0.5, zorder=4, label=f"perturbed to {target} (colour: source)")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"Perturbation to {target}", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, markerscale=1.2)
    if parent is None:
        fig.tight_layout()
        return fig if return_fig else ax
    return root(parent) if return_fig else ax
