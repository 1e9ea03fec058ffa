"""``council diversity RUN``: how different the seats' answers were, as a table (or JSON) and
a self-contained ``report.html``; for an experiment folder, its ``summary.json`` rendered. The
measuring is ``council.measure``'s (council/app/measure.py); this module parses and prints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# As council/app/measure.py names them; not imported, so that 'council --help' loads no numpy.
BASELINE_FILE = "baseline.jsonl"
BASELINE_ANSWERS = 8  # as council/records/measurable.py names it: a baseline's fewest answers
CACHE_FILE = ".embeddings.sqlite"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{value}'")
    return number


def analyse_run_dir(
    run_dir: Path | str,
    *,
    run: Any = None,
    embedder_name: str | None = None,
    cache_path: Path | str | None = None,
    baseline: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """Measure a run: the report (``RunDiversity.to_json()``) and the embedder that made it."""
    from council.app.measure import measure_run

    measured = measure_run(
        run if run is not None else Path(run_dir),
        baseline=baseline,
        embedder=embedder_name,
        cache=cache_path,
        folder=Path(run_dir),
    )
    return measured.report.to_json(), measured.embedder


def _load(args: argparse.Namespace) -> tuple[Any, Path]:
    """The report object for ``RUN`` and the folder its page goes into."""
    from council.app.measure import measure_run
    from council.base.errors import ConfigError
    from council.cli.arguments import parse_endpoints
    from council.cli.project import runs_folder_of
    from council.meter.cache import CachedEmbedder
    from council.reports.objects import ExperimentReport, RunReport

    endpoints = parse_endpoints(args.endpoint)
    folder = Path(args.run_dir)
    named = not folder.is_dir()  # a run ID, a unique prefix of one, or 'latest', in the ledger
    if named or (folder / "events.jsonl").is_file():
        measured = measure_run(
            args.run_dir if named else folder,
            baseline=args.baseline,
            embedder=args.embedder,
            runs_dir=runs_folder_of(args),
            cache=args.cache,
            axis=args.axis,
            endpoints=endpoints,
        )
        embedder = measured.embedder
        if isinstance(embedder, CachedEmbedder):
            print(
                f"embeddings: {embedder.hits} from the cache, {embedder.misses} new "
                f"({embedder.path})",
                file=sys.stderr,
            )
        return RunReport(measured.report), measured.folder or folder
    if (folder / SUMMARY_FILE).is_file():
        if args.baseline:
            raise ConfigError("--baseline needs a run folder; an experiment collects its own")
        from council.app.measure import read_summary

        return ExperimentReport(read_summary(folder)), folder
    raise ConfigError(
        f"'{folder}' is neither a run folder (no events.jsonl) "
        f"nor an experiment folder (no {SUMMARY_FILE})"
    )


def _diversity(args: argparse.Namespace) -> int:
    from council.base.errors import ConfigError
    from council.base.secrets import redacted_line

    report, folder = _load(args)
    path = folder / REPORT_FILE
    try:
        if not args.no_html:
            report.write_html(path)
        if args.csv:
            written = report.write_csv(args.csv)
            print(f"tables: {len(written)} CSV files in {args.csv}", file=sys.stderr)
    except OSError as exc:
        raise ConfigError(f"cannot write the report: {redacted_line(exc)}") from None
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(report)
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
        "run_dir",
        metavar="RUN",
        help="a run ID (or unique prefix, or 'latest') in the ledger of --out, a run folder, "
        "or an experiment folder",
    )
    diversity.add_argument(
        "--out", help="the runs folder (default: the project's 'out', else the runs home)"
    )
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
        nargs="?",
        const=BASELINE_ANSWERS,
        metavar="K",
        help="first ask each panel model K more times (default "
        f"{BASELINE_ANSWERS}) under the plain assistant prompt, appended to {BASELINE_FILE}: "
        "the no-persona baseline, for drift and the diversity sampling alone produces; "
        "each model is asked at the endpoint the run recorded for it",
    )
    diversity.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="MODEL=URL",
        help="for --baseline: send a model to this OpenAI-compatible base URL instead of the "
        "one the run recorded (repeatable; give a URL with a key again, keys are not stored)",
    )
    diversity.add_argument("--no-html", action="store_true", help=f"do not write {REPORT_FILE}")
    diversity.add_argument(
        "--csv", metavar="DIR", help="also write every table as a CSV file into DIR"
    )
    diversity.add_argument(
        "--cache", metavar="PATH", help=f"embedding cache (default: {CACHE_FILE} beside RUN_DIR)"
    )
    diversity.add_argument(
        "--axis",
        metavar="FILE",
        help="assistant axis for activation-recorded turns "
        "(default: the model's stored by 'council axis build')",
    )
    diversity.set_defaults(handler=_diversity)
