"""The HTML report of a run folder: one self-contained page (every figure embedded) to open and forward."""

from tspg.report._html import REPORT, build_report, build_sweep_page, write_report

__all__ = ["REPORT", "build_report", "build_sweep_page", "write_report"]
