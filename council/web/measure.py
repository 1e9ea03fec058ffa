"""Diversity reports in the web app: the same pages as ``council diversity`` writes, computed
when first asked for and kept beside the run."""

from __future__ import annotations

from pathlib import Path

from council.cli.diversity_cmd import REPORT_FILE, analyse_run_dir, read_summary
from council.reports.experiment_page import experiment_report_html
from council.reports.html import write_run_report
from council.reports.values import clean_json
from council.store.loader import load_run
from council.web.settings import ServerSettings


def diversity_html(settings: ServerSettings, run_id: str) -> str:
    run = load_run(run_id, settings.runs_dir)
    folder = Path(run.run_dir or settings.runs_dir / run_id)
    path = folder / REPORT_FILE
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        report, _ = analyse_run_dir(folder, run=run)
        write_run_report(clean_json(report), path)
    return path.read_text(encoding="utf-8")


def experiment_html(folder: Path) -> str:
    return experiment_report_html(clean_json(read_summary(folder)))
