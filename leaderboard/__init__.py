"""Run results -> leaderboards (Markdown, CSV, HTML, LaTeX), CMC plots and a self-contained HTML report.

The comparison and demo orchestration (``leaderboard.compare``, ``leaderboard.demo``) train models and import
torch; they are not imported here, so reading and formatting results stays light.
"""

from leaderboard.collect import GROUP_KEYS, ResultGroup, RunCollection, collect_runs, result_groups, with_reported
from leaderboard.report import FORMATS, render_report, write_leaderboard, write_report
from leaderboard.reported import REPORTED, ReportedResult, reported_for
from leaderboard.tables import COLUMNS, Leaderboard, build_leaderboards, to_csv, to_latex, to_markdown

__all__ = [
    "COLUMNS", "FORMATS", "GROUP_KEYS", "REPORTED", "Leaderboard", "ReportedResult", "ResultGroup", "RunCollection",
    "build_leaderboards", "collect_runs", "render_report", "reported_for", "result_groups", "to_csv", "to_latex",
    "to_markdown", "with_reported", "write_leaderboard", "write_report",
]
