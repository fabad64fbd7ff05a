"""Plots of a run: t-SNE maps, per-sample heatmaps, the source-panel figure and training histories.

Every plotting function returns a matplotlib :class:`~matplotlib.figure.Figure`, a plain one that pyplot does not
manage, so importing or using :mod:`tspg.pl` never changes the matplotlib backend and notebooks show figures inline
as before; :func:`save_figure` writes a figure as PNG and SVG. In the scanpy style, each takes ``ax=`` (draw into an
axes of yours, where the plot is a single axes), ``fig=`` (draw into a figure or subfigure of yours, any layout) and
``return_fig=False`` (return the axes drawn on instead of the figure).
"""

from tspg.pl._embedding import tsne
from tspg.pl._heatmap import heatmap, heatmap_panel, rows_to_show
from tspg.pl._history import history
from tspg.pl._palette import class_colors
from tspg.pl._save import figure_bytes, save_figure

__all__ = ["class_colors", "figure_bytes", "heatmap", "heatmap_panel", "history", "rows_to_show", "save_figure",
           "tsne"]
