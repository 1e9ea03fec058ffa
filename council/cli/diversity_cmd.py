"""``council diversity RUN_DIR``: how different the seats' answers were, as a table (or JSON)
and a self-contained ``report.html``; for an experiment folder, its ``summary.json`` rendered."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CACHE_FILE = ".embeddings.sqlite"  # beside the run folders: re-analysing embeds nothing twice
BASELINE_FILE = "baseline.jsonl"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{value}'")
    return number


def _first_line(exc: BaseException) -> str:
    from council.secrets import redact

    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def read_baseline(path: Path) -> list[dict[str, Any]]:
    """The rows of ``baseline.jsonl``: ``{"model": ..., "content": ...}``, one a line."""
    from council.errors import ConfigError

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


def _collect_baseline(run: Any, k: int, path: Path) -> None:
    """Ask each panel model ``k`` times with no persona; append the answers to ``path``."""
    from council.app import voices

    rows = voices.collect_baseline(run, k)
    with path.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def analyse_run_dir(
    run_dir: Path | str,
    *,
    run: Any = None,
    embedder_name: str | None = None,
    cache_path: Path | str | None = None,
    baseline: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """Measure a run: the report (``RunDiversity.to_json()``) and the cached embedder that
    made it (its ``hits`` and ``misses`` say what the cache saved). ``run`` is the run when
    already loaded from the ledger; otherwise the run folder's export is read."""
    import sqlite3

    from council.diversity.analysis import analyse_run, assistant_texts_by_model
    from council.diversity.cache import CachedEmbedder, embedder_from_name
    from council.diversity.metrics import EmbeddingError
    from council.errors import ConfigError
    from council.store.loader import load_run

    folder = Path(run_dir)
    run = run if run is not None else load_run(folder)
    if baseline:
        _collect_baseline(run, baseline, folder / BASELINE_FILE)
    voices = assistant_texts_by_model(read_baseline(folder / BASELINE_FILE))

    label = embedder_name or "the bundled all-MiniLM-L6-v2"
    # A sentence-transformers name is looked up on disk only: council never downloads a model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        inner = embedder_from_name(embedder_name)
        _ = inner.dimension  # loads the model now, so a bad name fails here with one line
    except Exception as exc:
        raise ConfigError(f"embedder '{label}' cannot be used: {_first_line(exc)}") from None
    cache = Path(cache_path) if cache_path else folder.resolve().parent / CACHE_FILE
    try:
        embedder = CachedEmbedder(inner, cache)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"embedding cache '{cache}': {_first_line(exc)}") from None
    try:
        report = analyse_run(run, embedder, assistant_voice=voices or None)
    except EmbeddingError as exc:
        raise ConfigError(
            f"{exc} (embedding cache '{cache}': delete it or pass another --cache)"
        ) from None
    except sqlite3.Error as exc:
        raise ConfigError(f"embedding cache '{cache}': {_first_line(exc)}") from None
    return report.to_json(), embedder


def read_summary(folder: Path) -> dict[str, Any]:
    from council.errors import ConfigError

    path = folder / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the experiment summary: {_first_line(exc)}"
        ) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("arms", []), list):
        raise ConfigError(f"{path}: not an experiment summary (expected an object with 'arms')")
    return summary


def _diversity(args: argparse.Namespace) -> int:
    from council.errors import ConfigError
    from council.reports import experiment_table, run_table
    from council.reports.html import write_experiment_report, write_run_report
    from council.reports.values import clean_json

    folder = Path(args.run_dir)
    write: Callable[[Mapping[str, Any], Path | str], Path]
    run = None
    if not folder.is_dir():  # a run ID, a unique prefix of one, or 'latest', in the ledger
        from council.store.loader import load_run

        run = load_run(args.run_dir, args.out)
        folder = Path(run.run_dir or Path(args.out) / run.run_id)
        folder.mkdir(parents=True, exist_ok=True)
    if run is not None or (folder / "events.jsonl").is_file():
        report, embedder = analyse_run_dir(
            folder, run=run, embedder_name=args.embedder, cache_path=args.cache,
            baseline=args.baseline,
        )  # fmt: skip
        print(
            f"embeddings: {embedder.hits} from the cache, {embedder.misses} new ({embedder.path})",
            file=sys.stderr,
        )
        text, write = run_table(report), write_run_report
        from council.cli.axis_cmd import activation_drift_section
        from council.store.loader import load_run

        text += activation_drift_section(report, run or load_run(folder), args.axis)
    elif (folder / SUMMARY_FILE).is_file():
        if args.baseline:
            raise ConfigError("--baseline needs a run folder; an experiment collects its own")
        report = read_summary(folder)
        text, write = experiment_table(report), write_experiment_report
    else:
        raise ConfigError(
            f"'{folder}' is neither a run folder (no events.jsonl) "
            f"nor an experiment folder (no {SUMMARY_FILE})"
        )
    report = clean_json(report)
    path = folder / REPORT_FILE
    if not args.no_html:
        try:
            write(report, path)
        except OSError as exc:
            raise ConfigError(f"cannot write '{path}': {_first_line(exc)}") from None
    print(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) if args.json else text)
    if not args.no_html:
        print(f"report: {path}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    diversity = commands.add_parser(
        "diversity",
        help="how different the seats' answers were: a table and report.html",
        description="Measure a run (or render an experiment folder's summary.json): per stage "
        "and round, mean pairwise distance and Vendi score; stance flips; drift toward the "
        "assistant voice. Writes a self-contained report.html into the folder.",
    )
    diversity.add_argument(
        "run_dir", metavar="RUN",
        help="a run ID (or unique prefix, or 'latest') in the ledger of --out, a run folder, "
        "or an experiment folder",
    )  # fmt: skip
    diversity.add_argument("--out", default="runs", help="the runs folder (default: runs)")
    diversity.add_argument("--json", action="store_true", help="print the report as JSON")
    diversity.add_argument(
        "--embedder",
        metavar="NAME",
        help="'fake', a sentence-transformers name or folder, or litellm:PROVIDER/MODEL "
        "(default: the bundled all-MiniLM-L6-v2)",
    )
    diversity.add_argument(
        "--baseline",
        type=_positive,
        metavar="K",
        help=f"first ask each panel model K times with no persona (appended to {BASELINE_FILE})"
        ", so drift can be measured",
    )
    diversity.add_argument("--no-html", action="store_true", help=f"do not write {REPORT_FILE}")
    diversity.add_argument(
        "--cache", metavar="PATH", help=f"embedding cache (default: {CACHE_FILE} beside RUN_DIR)"
    )
    diversity.add_argument(
        "--axis", metavar="FILE", help="assistant axis for activation-recorded turns "
        "(default: the model's stored by 'council axis build')",
    )  # fmt: skip
    diversity.set_defaults(handler=_diversity)
