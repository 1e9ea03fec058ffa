"""Diversity reports in the web app: the same pages as ``council diversity`` writes (from
``council.measure``), measured when asked by a POST, one at a time, and kept beside the run.
Measuring embeds every reply (seconds, and hundreds of MB the first time), so no GET does it,
and a second request while one is measuring is told to wait rather than queued."""

from __future__ import annotations

import threading
from pathlib import Path

from council.app.measure import REPORT_FILE, measure, read_summary
from council.reports.objects import ExperimentReport
from council.store.loader import load_run
from council.web.live import Busy
from council.web.settings import ServerSettings

_MEASURING = threading.Lock()


def _report_path(settings: ServerSettings, run_id: str) -> Path:
    run = load_run(run_id, settings.runs_dir)
    return Path(run.run_dir or settings.runs_dir / run_id) / REPORT_FILE


def kept_report(settings: ServerSettings, run_id: str) -> str | None:
    """The run's report if it has been measured, else None (reading is all a GET does)."""
    path = _report_path(settings, run_id)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def measure_once(settings: ServerSettings, run_id: str) -> None:
    """Measure the run and keep its report, unless it is kept already; one at a time."""
    path = _report_path(settings, run_id)
    if path.is_file():
        return
    if not _MEASURING.acquire(blocking=False):
        raise Busy("a diversity report is being measured: try again when it is done")
    try:
        measure(run_id, runs_dir=settings.runs_dir).write_html(path)
    finally:
        _MEASURING.release()


def experiment_html(folder: Path) -> str:
    return ExperimentReport(read_summary(folder)).to_html()
