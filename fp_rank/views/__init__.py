"""What people see of a report: tables (terminal, Markdown), figures, ranked strips, the output
folder, and how each declared metric is shown (:mod:`~fp_rank.views.presentation`).

Views only read a report; none of them changes a number.
"""
