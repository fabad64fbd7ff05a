"""Where a plot is drawn: a new figure, the caller's axes (``ax=``) or the caller's figure or subfigure (``fig=``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure, SubFigure

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def canvas_for(
    plot: str, ax: Axes | None, fig: Figure | SubFigure | None, n_axes: int
) -> tuple[Figure | SubFigure | None, Axes | None]:
    """Check ``ax`` and ``fig`` for a plot of ``n_axes`` axes; the figure (or subfigure) to draw in and the axes.

    Returns ``(None, None)`` when neither is given (the caller makes its own figure), ``(ax's parent, ax)`` for
    ``ax``, ``(fig, None)`` for ``fig``. ``ax`` is refused, with a pointer to ``fig=``, unless the plot is one axes.
    """
    if ax is not None and fig is not None:
        raise ValueError(f"{plot}: pass ax= or fig=, not both")
    if ax is not None:
        if n_axes != 1:
            raise ValueError(f"{plot} draws {n_axes} axes here, so it cannot draw into one ax=; pass fig= (a Figure "
                             "or SubFigure, e.g. from Figure.subfigures) to draw it into a figure of yours")
        return ax.figure, ax
    return fig, None


def root(fig: Figure | SubFigure) -> Figure:
    """The top-level figure holding ``fig`` (itself if it is a figure)."""
    return fig.figure if isinstance(fig, SubFigure) else fig  # a subfigure's .figure is the top-level figure
