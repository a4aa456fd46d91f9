"""Reporting: the :class:`Report` (per-query rows, method results, provenance), its file forms
(JSON, CSV, the JSON schema) and the aggregation of rows into results. Data only: statistics
live in :mod:`fp_rank.analysis`, tables, figures and cards in :mod:`fp_rank.views`, Hub export
in :mod:`fp_rank.hub`; each takes a report.
"""

from fp_rank.reporting.report import MethodResult, Report

__all__ = ["MethodResult", "Report"]
