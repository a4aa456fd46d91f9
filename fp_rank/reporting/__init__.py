"""Reporting: the Report object, its JSON/CSV/Markdown forms and figures."""

from fp_rank.reporting.report import MethodResult, Report

__all__ = ["MethodResult", "Report"]
