"""Reports in the web app. A run's diversity: the same page as ``council diversity`` writes
(from ``council.measure``), measured when asked by a POST, one at a time, and kept beside the
run. Measuring embeds every reply (seconds, and hundreds of MB the first time), so no GET does
it, and a second request while one is measuring is told to wait rather than queued. An
experiment folder: shown by the view registered for its kind (``EXPERIMENT_VIEWS``).

Both are shown inside the app's own page (``council.reports.page.body_of``), with its
navigation and its style sheet."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from council.app.measure import REPORT_FILE, measure, read_summary
from council.base.errors import ConfigError
from council.reports.objects import ExperimentReport
from council.reports.page import body_of
from council.store.loader import load_run
from council.web.live import Busy
from council.web.settings import ServerSettings

_MEASURING = threading.Lock()


def _report_path(settings: ServerSettings, run_id: str) -> Path:
    run = load_run(run_id, settings.runs_dir)
    return Path(run.run_dir or settings.runs_dir / run_id) / REPORT_FILE


def kept_report(settings: ServerSettings, run_id: str) -> str | None:
    """The run's report (its body, for the app's page) if it has been measured, else None
    (reading is all a GET does)."""
    path = _report_path(settings, run_id)
    return body_of(path.read_text(encoding="utf-8")) if path.is_file() else None


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


@dataclass(frozen=True)
class ExperimentView:
    """How the app shows one kind of experiment: ``fits`` says whether a summary is of this
    kind, ``html`` renders its folder as a fragment of the app's page."""

    kind: str
    fits: Callable[[dict[str, Any]], bool]
    html: Callable[[Path], str]


def _diversity_html(folder: Path) -> str:
    return body_of(ExperimentReport(read_summary(folder)).to_html())


CAPPING_FACTS = ("model", "axis_id", "percentile", "reply_tokens", "personas", "questions")


def _capping_html(folder: Path) -> str:
    from council.app.experiments.capping_summary import capping_lines

    summary = _summary(folder)
    plan = summary.get("plan", {})
    shown = {key: plan[key] for key in CAPPING_FACTS if key in plan}
    facts = "".join(
        f"<dt>{escape(key)}</dt><dd>{escape(_fact(value))}</dd>" for key, value in shown.items()
    )
    return (
        "<h2>Activation capping</h2><p class='explain'>What capping a seat's projection on "
        "the assistant axis did, free against capped, with intervals (as <code>council "
        "experiment capping</code> prints it).</p>"
        f"<dl class='meta'>{facts}</dl>"
        f"<pre class='wide'>{escape(chr(10).join(capping_lines(summary)))}</pre>"
    )


def _fact(value: Any) -> str:
    return f"{len(value)}" if isinstance(value, list) else str(value)


def _eval_html(folder: Path) -> str:
    from council.reports.eval_page import EvalReport

    return body_of(EvalReport(_summary(folder)).to_html())


# First fit wins: an eval's summary says its kind; a capping summary names its ceiling and
# judge; a diversity summary is the rest.
EXPERIMENT_VIEWS: list[ExperimentView] = [
    ExperimentView("eval", lambda s: s.get("kind") == "eval", _eval_html),
    ExperimentView("capping", lambda s: "ceiling" in s and "judge" in s, _capping_html),
    ExperimentView("diversity", lambda s: True, _diversity_html),
]


def _summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"experiment '{folder.name}': its summary.json cannot be read") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"experiment '{folder.name}': its summary.json is not an object")
    return summary


def experiment_html(folder: Path) -> str:
    """The folder's report as a fragment of the app's page, by the view for its kind."""
    summary = _summary(folder)
    view = next(v for v in EXPERIMENT_VIEWS if v.fits(summary))
    return view.html(folder)
