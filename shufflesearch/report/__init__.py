"""A run's report: the Pareto front as csv, png and one offline html page, search progress, final
results beside it; several runs compared on one plot.
"""

from shufflesearch.report._report import compare_runs, write_report

__all__ = ["compare_runs", "write_report"]
