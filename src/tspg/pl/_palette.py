"""Class colours that do not repeat within the classes shown."""

from __future__ import annotations

import matplotlib
import numpy as np


def class_colors(classes: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """A distinct colour per class: tab10 up to 10 classes, tab20 up to 20, evenly spaced hues beyond.

    Examples
    --------
    >>> c = class_colors(["a", "b", "c"])
    >>> len(set(c.values()))
    3
    """
    n = len(classes)
    if n <= 10:
        colors = [matplotlib.colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colors = [matplotlib.colormaps["tab20"](i) for i in range(n)]
    else:
        colors = [matplotlib.colormaps["gist_rainbow"](v) for v in np.linspace(0, 1, n, endpoint=False)]
    return dict(zip(classes, colors, strict=True))
