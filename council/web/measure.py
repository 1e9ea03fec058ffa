"""Diversity reports in the web app: the same pages as ``council diversity`` writes (from
``council.measure``), computed when first asked for and kept beside the run."""

from __future__ import annotations

from pathlib import Path

from council.app.measure import REPORT_FILE, measure, read_summary
from council.reports.objects import ExperimentReport
from council.store.loader import load_run
from council.web.settings import ServerSettings


def diversity_html(settings: ServerSettings, run_id: str) -> str:
    run = load_run(run_id, settings.runs_dir)
    path = Path(run.run_dir or settings.runs_dir / run_id) / REPORT_FILE
    if not path.is_file():
        measure(run_id, runs_dir=settings.runs_dir).write_html(path)
    return path.read_text(encoding="utf-8")


def experiment_html(folder: Path) -> str:
    return ExperimentReport(read_summary(folder)).to_html()
