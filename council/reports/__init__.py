"""Reports on diversity: aligned text tables for the terminal and one self-contained HTML page
(inline CSS, hand-written inline SVG charts, nothing fetched) for a run or an experiment."""

from council.reports.html import write_experiment_report, write_run_report
from council.reports.table import experiment_table, run_table

__all__ = ["experiment_table", "run_table", "write_experiment_report", "write_run_report"]
