"""``council follow-up RUN "question"``: the same seats, asked a new question after a run,
each shown a bounded digest of that run (``council.app.follow_up``)."""

from __future__ import annotations

import argparse
from typing import Any

from council.cli.arguments import read_question, runs_folder
from council.cli.output import progress_sinks, report_run
from council.cli.project import runs_folder_of
from council.cli.spec_flags import add_spec_flags, spec_flags


def _follow_up(args: argparse.Namespace) -> int:
    from council.text.templates import start_render_worker

    start_render_worker()  # a run is near certain: the worker starts during the imports
    from council.app.follow_up import follow_up

    question = read_question(args.question, args.question_file)
    result = follow_up(
        args.run_id,
        question,
        runs_folder_of(args),
        sinks=progress_sinks(args.quiet),
        endpoints=spec_flags(args).get("endpoints") or {},
        allow_unfinished=args.allow_unfinished,
    )
    return report_run(result, args.json)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "follow-up",
        help="ask a finished run's seats a new question, each shown its digest of that run",
    )
    parser.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    parser.add_argument(
        "question", nargs="?", help="the new question; '-' reads it from standard input"
    )
    parser.add_argument(
        "--question-file", metavar="FILE", help="read the question from a file (UTF-8)"
    )
    parser.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="follow up a run that failed or was stopped (its digest says it has no verdict)",
    )
    add_spec_flags(parser, ("endpoints",))  # convene's flag, from the one spec
    parser.add_argument("--json", action="store_true", help="the run as JSON, as convene")
    parser.add_argument(
        "--out",
        type=runs_folder,
        help="the runs folder (default: the project's 'out', else the runs home)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=_follow_up)
