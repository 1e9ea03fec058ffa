"""Measuring a run's diversity from Python: ``council.measure(run_or_dir_or_id, baseline=K)``.

A run is measured where it is recorded: its folder holds ``baseline.jsonl`` (its models'
answers under the plain assistant prompt, the *no-persona baseline*, for drift and for the
diversity sampling alone produces) and, beside the folder, an embedding cache, so measuring it
again embeds nothing twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from council.base.errors import ConfigError, first_problem
from council.base.runs_home import RUNS_HOME, runs_location
from council.base.secrets import redacted_line
from council.meter.analysis import analyse_run, assistant_texts_by_model
from council.meter.cache import CachedEmbedder, open_embedder
from council.meter.embedders import Embedder
from council.meter.experiment_report import ExperimentSummary
from council.meter.metrics import EmbeddingError
from council.meter.run_report import RunDiversity
from council.records.run import RunResult
from council.reports.objects import RunReport
from council.store.loader import load_run

REPORT_FILE = "report.html"  # a run's or an experiment's page, in its folder
SUMMARY_FILE = "summary.json"  # an experiment folder's measured summary
CACHE_FILE = ".embeddings.sqlite"  # beside the run folders: re-analysing embeds nothing twice
BASELINE_FILE = "baseline.jsonl"


def read_baseline(path: Path) -> list[dict[str, Any]]:
    """The rows of ``baseline.jsonl``: ``{"model": ..., "content": ...}``, one a line."""
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(row, dict) or "model" not in row:
            raise ConfigError(f"{path}:{number}: expected an object with 'model' and 'content'")
        rows.append(row)
    return rows


def _collect_baseline(
    run: RunResult,
    k: int,
    recorded: list[dict[str, Any]],
    endpoints: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Ask each panel model ``k`` times with no persona, on seeds after those of the answers
    already ``recorded``: the same seeds again would give the same answers, and a baseline of
    repeats reads as one with no spread."""
    from council.app import voices

    panel = {s.model for s in run.seats if s.role == "panel"}
    counts = Counter(str(row["model"]) for row in recorded if row.get("model") in panel)
    first_seed = max(counts.values(), default=0)
    if endpoints:  # only when given: a stand-in for collect_baseline need not take them
        return voices.collect_baseline(run, k, first_seed=first_seed, endpoints=endpoints)
    return voices.collect_baseline(run, k, first_seed=first_seed)


@dataclass
class Measured:
    """A run's report and the embedder that made it (a cache's ``hits`` and ``misses`` say
    what it saved)."""

    report: RunDiversity
    embedder: Embedder
    run: RunResult
    folder: Path | None  # where the run's baseline and report live; None: a run in memory


def locate(
    run: RunResult | str | Path, runs_dir: Path | str | None = None, folder: Path | None = None
) -> tuple[RunResult, Path | None]:
    """A run and its folder, from a ``RunResult`` (in ``folder`` when given), a run folder, or
    an ID, unique prefix or ``latest`` in the ledger of ``runs_dir``."""
    if isinstance(run, RunResult):
        return run, folder or (Path(run.run_dir) if run.run_dir else None)
    if Path(run).is_dir() and (Path(run) / "events.jsonl").is_file():
        return load_run(Path(run)), Path(run)
    found = load_run(str(run), runs_dir) if runs_dir is not None else load_run(str(run))
    if found.run_dir:
        folder = Path(found.run_dir)
    else:
        folder = runs_location(runs_dir if runs_dir is not None else RUNS_HOME) / found.run_id
    folder.mkdir(parents=True, exist_ok=True)
    return found, folder


def measure_run(
    run: RunResult | str | Path,
    *,
    baseline: int | None = None,
    embedder: str | Embedder | None = None,
    runs_dir: Path | str | None = None,
    cache: Path | str | None = None,
    folder: Path | None = None,
    axis: Path | str | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> Measured:
    """Measure a run; with ``baseline`` K, first ask each panel model K more times with no
    persona (appended to the run folder's ``baseline.jsonl``; BASELINE_ANSWERS, 8, or more in
    all make a baseline worth reading), each model reached at the endpoint the run recorded for
    it unless ``endpoints`` names another. ``folder``: where a ``RunResult``'s baseline and
    cache live, when not its own ``run_dir``. Turns that recorded activations are also placed
    on the assistant axis (``axis``, else the model's stored one).
    """
    found, folder = locate(run, runs_dir, folder)
    rows = read_baseline(folder / BASELINE_FILE) if folder else []
    if baseline:
        fresh = _collect_baseline(found, baseline, rows, endpoints)
        if folder:
            with (folder / BASELINE_FILE).open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh)
        rows += fresh
    voices = assistant_texts_by_model(rows)
    model = _embedder(embedder, folder, cache)
    where = f" (embedding cache '{model.path}')" if isinstance(model, CachedEmbedder) else ""
    try:
        report = analyse_run(found, model, assistant_voice=voices or None)
    except EmbeddingError as exc:
        hint = ": delete it or pass another --cache" if where else ""
        raise ConfigError(f"{exc}{where}{hint}") from None
    except sqlite3.Error as exc:
        raise ConfigError(f"{redacted_line(exc)}{where}") from None
    if rows:
        from council.app.voices import library_protocol_note

        notes = [note for note in [library_protocol_note(found)] if note]
        report = report.model_copy(update={"record_notes": [*report.record_notes, *notes]})
    if found.audits:  # the audit of the run stands beside its diversity
        report = report.model_copy(update={"audits": found.audits})
    return Measured(with_activation_drift(report, found, axis), model, found, folder)


def with_activation_drift(
    report: RunDiversity, run: RunResult, axis: Path | str | None
) -> RunDiversity:
    """For a run whose seats recorded activations, the report with their drift along the
    assistant axis and its correlation with the embedding drift (``activation_drift``)."""
    recorded = [t for t in run.turns if t.activations is not None]
    if not recorded:
        return report
    from council.meter.activations.drift import activation_drift
    from council.records.axis import load_axis, stored_axis

    local = "local/" + recorded[0].model.rpartition("/")[2]
    found = load_axis(Path(axis)) if axis is not None else stored_axis(local)
    drift = activation_drift(run, found, report.drift)
    return report.model_copy(update={"activation_drift": drift})


def _embedder(
    embedder: str | Embedder | None, folder: Path | None, cache: Path | str | None
) -> Embedder:
    if embedder is not None and not isinstance(embedder, str):
        return embedder  # an embedder object is used as it is, uncached
    if cache is not None:
        return open_embedder(embedder, cache)
    # A run held only in memory has no folder to keep a cache beside: the cache lives with it.
    return open_embedder(embedder, folder.resolve().parent / CACHE_FILE if folder else ":memory:")


def measure(
    run: RunResult | str | Path,
    baseline: int | None = None,
    *,
    embedder: str | Embedder | None = None,
    runs_dir: Path | str | None = None,
    cache: Path | str | None = None,
    axis: Path | str | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> RunReport:
    """How different a run's seats were: per stage and round the mean pairwise distance and
    Vendi score, outliers with their reply lengths, similarity between seats, drift toward
    the assistant voice and, with a baseline, the no-persona baseline per model (the distance
    among its answers under the plain assistant prompt). Replies shorter than
    MIN_REPLY_CHARACTERS (40) are left out and counted.

    ``run``: a ``RunResult``, a run folder, or an ID, unique prefix or ``latest`` in the ledger
    of ``runs_dir``. ``baseline``: first ask each panel model that many more times with no
    persona (at least 8 answers per model in all, BASELINE_ANSWERS, for a baseline that is
    not mostly noise; the report notes a thinner one). Each model is asked where the run asked
    it: at the endpoint the run recorded (``endpoints``, model -> base URL, overrides one or
    adds one, e.g. a URL whose key was not stored), with its key read from the environment now.
    ``embedder``: ``None`` (the bundled all-MiniLM-L6-v2), ``"fake"``, a sentence-transformers
    name or folder, ``"litellm:PROVIDER/MODEL"``, or an embedder object. ``axis``: the assistant
    axis file for activation-recorded turns (default: the one stored for their model).
    """
    measured = measure_run(
        run,
        baseline=baseline,
        embedder=embedder,
        runs_dir=runs_dir,
        cache=cache,
        axis=axis,
        endpoints=endpoints,
    )
    return RunReport(measured.report)


def read_summary(folder: Path) -> ExperimentSummary:
    """An experiment folder's ``summary.json``, refused in one line when it is not one."""
    path = folder / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the experiment summary: {redacted_line(exc)}"
        ) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("arms", []), list):
        raise ConfigError(f"{path}: not an experiment summary (expected an object with 'arms')")
    try:
        return ExperimentSummary.model_validate(summary)
    except ValidationError as exc:
        problem = first_problem(exc, "(top level)")
        raise ConfigError(f"{path}: not an experiment summary: {problem}") from None
