"""The study report: figures (matplotlib, PNG), an HTML page and ``summary.json`` from a results store."""

from archscale.report.build import Report, build_report, write_report

__all__ = ["Report", "build_report", "write_report"]
