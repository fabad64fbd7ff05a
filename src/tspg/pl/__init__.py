"""Plots of a run: t-SNE maps, per-sample heatmaps, the source-panel figure and training histories.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` (drawn off-screen); :func:`save_figure`
writes it as PNG and SVG.
"""

from tspg.pl._embedding import tsne
from tspg.pl._heatmap import heatmap, heatmap_panel, rows_to_show
from tspg.pl._history import history
from tspg.pl._palette import class_colors
from tspg.pl._save import figure_bytes, save_figure

__all__ = ["class_colors", "figure_bytes", "heatmap", "heatmap_panel", "history", "rows_to_show", "save_figure",
           "tsne"]
