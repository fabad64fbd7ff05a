"""Writing figures atomically, in PNG and SVG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from tspg._io import atomic_write

FORMATS: tuple[str, ...] = ("png", "svg")


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure rendered to ``fmt`` (``png`` or ``svg``) as bytes; SVG output has no date, so it is reproducible."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    # a fixed salt makes the SVG's element ids, and so the file, the same on every run
    with matplotlib.rc_context({"svg.hashsalt": "tspg"}):
        # a figure with a layout engine is laid out already; "tight" would lay it out (and render it) twice
        bbox = None if fig.get_layout_engine() is not None else "tight"
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches=bbox, metadata=metadata)
    return buf.getvalue()


def save_figure(fig: Figure, stem: str | Path, formats: tuple[str, ...] = FORMATS, dpi: int = 110) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` (atomically).

    Neither pyplot nor the matplotlib backend is touched: a figure made by :mod:`tspg.pl` is a plain
    :class:`~matplotlib.figure.Figure`, not registered with pyplot, and is freed once unreferenced. A pyplot figure
    (e.g. from ``plt.subplots()`` drawn on with ``ax=``) is left open; close it with ``plt.close(fig)``.

    Parameters
    ----------
    fig
        The figure.
    stem
        Path without suffix.
    formats
        File formats to write.
    dpi
        Resolution of raster formats.

    Returns
    -------
    The paths written.
    """
    stem = Path(stem)
    rendered = {}
    engine = fig.get_layout_engine()
    try:
        for i, fmt in enumerate(formats):
            rendered[fmt] = figure_bytes(fig, fmt, dpi)
            if i == 0 and engine is not None and len(formats) > 1:
                # laid out once: the other formats keep the first one's layout instead of computing it again
                # (constrained layout measures every tick label, as costly as drawing the figure)
                fig.set_layout_engine("none")
    finally:
        if engine is not None and fig.get_layout_engine() is not engine:
            fig.set_layout_engine(engine)
    return [atomic_write(stem.with_name(f"{stem.name}.{fmt}"), lambda p, d=data: p.write_bytes(d))
            for fmt, data in rendered.items()]
