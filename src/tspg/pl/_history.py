"""Training history: every loss and validation score per epoch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tspg.pl._canvas import canvas_for, root

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure


def history(table: pd.DataFrame, title: str = "Training history", columns: list[str] | None = None,
            best_epoch: int | None = None, *, ax: Axes | None = None, fig: Figure | SubFigure | None = None,
            return_fig: bool = True) -> Figure | list[Axes]:
    """One small panel per recorded quantity against the epoch.

    A panel is on a log scale where its values are all positive and span more than a factor of 10.

    Parameters
    ----------
    table
        Per-epoch rows with an ``epoch`` column (e.g. ``history.tsv`` or ``classifier_history.tsv``).
    title
        Figure title.
    columns
        Columns to draw (default: every numeric column but ``epoch`` and flags).
    best_epoch
        The epoch whose weights were kept (a dashed line), if known.
    ax
        Draw into this axes (of a figure of yours) instead of a new figure; only with one column, a single panel
        (else a ``ValueError`` points to ``fig``). ``title`` is then not drawn: the caller's figure is left alone.
    fig
        Draw the panels into this figure or subfigure (e.g. one of ``Figure.subfigures``), empty, instead of a new
        one, ``title`` included; not together with ``ax``. Its layout engine is left as it is (tspg's own figures
        use constrained layout).
    return_fig
        Return the figure (the top-level one holding ``ax`` or ``fig``, if given); else the list of the panels'
        axes, one per column.

    Returns
    -------
    The figure, or the list of axes with ``return_fig=False``.
    """
    if columns is None:
        columns = [c for c in table.columns if c not in ("epoch", "kept", "best")
                   and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]
    n = max(1, len(columns))
    parent, given = canvas_for("history", ax, fig, n)
    ncol = min(4, n)
    nrow = math.ceil(n / ncol)
    fig = parent if parent is not None else Figure(figsize=(3.2 * ncol, 2.4 * nrow + 0.5), layout="constrained")
    epochs = table["epoch"] if "epoch" in table else pd.Series(np.arange(1, len(table) + 1))
    drawn = []
    for i, col in enumerate(columns):
        ax = given if given is not None else fig.add_subplot(nrow, ncol, i + 1)
        drawn.append(ax)
        values = table[col].astype(float)
        ax.plot(epochs, values, lw=1.2)
        if "kept" in table and table["kept"].astype(bool).any():
            kept = table["kept"].astype(bool).to_numpy()
            ax.plot(epochs[kept], values[kept], "o", ms=2.5, color="tab:red", label="checkpoint")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:red", ls="--", lw=0.8)
        finite = values[np.isfinite(values)]
        if len(finite) and (finite > 0).all() and finite.max() > 10 * finite.min():
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("epoch", fontsize=7)
    if given is None:
        fig.suptitle(title, fontsize=11)
    return root(fig) if return_fig else drawn
