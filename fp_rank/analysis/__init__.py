"""Statistics on a report: intervals, paired comparison, planning, drift and encoder agreement.

Every function takes a :class:`~fp_rank.Report` (fresh or loaded from a file) and reads its
per-query rows; the maths is in :mod:`fp_rank.stats`.
"""

from fp_rank.analysis.statistics import add_intervals, add_statistics, compare, drift, encoder_agreement, plan

__all__ = ["add_intervals", "add_statistics", "compare", "drift", "encoder_agreement", "plan"]
