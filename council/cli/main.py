"""The ``council`` command line.

Kept light at start-up: heavy modules load inside the command that needs them, so
``council --help`` answers at once. User mistakes print one line and exit 2; a run that cannot
finish prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from council.base.distribution import DISTRIBUTION, __version__, warn_if_shadowed
from council.cli import (
    audit_cmd,
    axis_cmd,
    diversity_cmd,
    eval_cmd,
    experiment_cmd,
    follow_up_cmd,
    mcp_cmd,
    models_cmd,
    panels_cmd,
    personas_cmd,
    protocols_cmd,
    runs_cmd,
    serve_cmd,
    worker_cmd,
)
from council.cli.arguments import Parser, read_question, runs_folder, split_list
from council.cli.output import progress_sinks, report_run
from council.cli.seat_options import detected
from council.cli.spec_flags import add_spec_flags

EXIT_USAGE = 2


def _convene(args: argparse.Namespace) -> int:
    from council.text.templates import start_render_worker

    start_render_worker()  # a run is certain: the render worker starts during the imports below
    from council.app.council import Council
    from council.base.errors import ConfigError
    from council.cli.project import overrides_note, settle

    if args.personas is not None and not split_list(args.personas):
        raise ConfigError(f"--personas names no persona: '{args.personas}'")
    question = read_question(args.question, args.question_file)
    settled = settle(args)
    spec = settled.spec
    if spec.model == "auto":  # the command line's own: found here, said on screen
        found: dict[str, str] = {}
        model, pool, tiers = detected(list(spec.models), found)
        spec = spec.model_copy(
            update={
                "model": model,
                "models": pool,
                "tiers": tiers or {},
                "endpoints": {**found, **spec.endpoints},
            }
        )
    council = Council.from_spec(
        spec, question=question, runs_dir=settled.out[0], sinks=progress_sinks(args.quiet)
    )
    applied = overrides_note(settled.rows())  # nyk's checkpoint says when overrides applied
    if applied:
        council.choice_notes.insert(0, applied)
    if args.dry_route or not args.quiet:  # quiet or not, the run's record keeps them
        for note in council.choice_notes:
            print(f"council: {note}", file=sys.stderr)
    if args.dry_route:
        return _print_seat_map(council.seat_map(), args.json)
    return report_run(council.convene(question), args.json)


def _config_show(args: argparse.Namespace) -> int:
    from council.cli.project import show

    return show(args)


def _print_seat_map(seats: Sequence[Any], as_json: bool) -> int:
    from council.seats.routing import model_family

    rows = [
        {
            "seat": s.seat,
            "persona": s.persona,
            "role": s.role,
            "model": s.model,
            "family": model_family(s.model),
            "method": s.method,
            "reason": s.reason,
            "weight": s.weight,
        }
        for s in seats
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["seat"]) for r in rows)
    model_width = max(len(r["model"]) for r in rows)
    method_width = max(len(r["method"] or "-") for r in rows)
    for r in rows:  # nyk's routing table: member -> provider -> model -> method, and why
        print(
            f"{r['seat']:<{width}}  {r['model']:<{model_width}}  {r['family']:<10}  "
            f"{r['method'] or '-':<{method_width}}  {r['reason']}"
        )
    return 0


def _register_convene(commands: Any) -> None:
    convene = commands.add_parser("convene", help="deliberate on a question")
    convene.add_argument(
        "question",
        nargs="?",
        help="the question before the council; '-' reads it from standard input",
    )
    convene.add_argument(
        "--question-file", metavar="FILE", help="read the question from a file (UTF-8)"
    )
    convene.add_argument(
        "--config", metavar="FILE", help="project file of defaults (default: ./council.toml)"
    )
    convene.add_argument(
        "--dry-route", action="store_true", help="print the seat map and why; call no model"
    )
    convene.add_argument(
        "--out",
        type=runs_folder,
        help="folder for runs (default: the runs home, $COUNCIL_RUNS or "
        "~/.local/share/council/runs)",
    )
    convene.add_argument("--json", action="store_true", help="print the run as JSON on stdout")
    add_spec_flags(convene)  # every council option, from CouncilSpec
    convene.add_argument(
        "--quiet", action="store_true", help="no progress display, no seating notes"
    )
    convene.set_defaults(handler=_convene)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="council",
        description="Convene a council of personas, each seated on a model, on a question.",
    )
    version = f"council {__version__} ({DISTRIBUTION})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _register_convene(commands)

    config = commands.add_parser("config", help="the project file's settings, merged")
    config_actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = config_actions.add_parser("show", help="every convene setting and where it came from")
    show.add_argument("--config", metavar="FILE", help="project file (default: ./council.toml)")
    show.add_argument("--json", action="store_true", help="the settings as one JSON object")
    add_spec_flags(show)  # what convene would use with these flags
    show.set_defaults(handler=_config_show)

    personas_cmd.register(commands)
    panels_cmd.register(commands)
    protocols_cmd.register(commands)
    runs_cmd.register(commands)
    audit_cmd.register(commands)
    follow_up_cmd.register(commands)
    models_cmd.register(commands)
    serve_cmd.register(commands)
    experiment_cmd.register(commands)
    eval_cmd.register(commands)
    diversity_cmd.register(commands)
    mcp_cmd.register(commands)
    axis_cmd.register(commands)
    worker_cmd.register(commands)
    return parser


def _interrupted() -> int:
    """Ctrl-C, SIGTERM or SIGHUP ended the command: said in one line (a closed terminal may
    take it), with the shell's status for that signal."""
    from council.base.processes import interrupted_by

    sig = interrupted_by()
    with contextlib.suppress(OSError):
        print(
            f"council: interrupted{f' ({sig.name})' if sig else ''}; finished turns are in the "
            "ledger ('council resume latest')",
            file=sys.stderr,
        )
    return 128 + (sig or signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    warn_if_shadowed()  # also when another distribution's council/__init__.py replaced ours
    args = build_parser().parse_args(argv)
    from council.base.processes import end_like_ctrl_c

    end_like_ctrl_c()  # SIGTERM and SIGHUP (timeout, systemd, a closed terminal) end it cleanly
    try:
        return _run(args)
    finally:
        # The ledger's log is checkpointed after the command's output, not during its run
        # (council/store/wal.py); a command that never opened a ledger imports nothing for it.
        wal = sys.modules.get("council.store.wal")
        if wal is not None:
            wal.settle()


def _run(args: argparse.Namespace) -> int:
    from council.base.errors import CouncilError
    from council.base.processes import interrupted_by
    from council.base.secrets import redact

    try:
        code: int = args.handler(args)
    except CouncilError as exc:
        print(f"council: error: {redact(str(exc))}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except BrokenPipeError:  # the reader (head, a pager) closed early: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except KeyboardInterrupt:
        return _interrupted()
    # A server (uvicorn) that shut down on a signal it caught returns as if asked to.
    return _interrupted() if interrupted_by() else code


if __name__ == "__main__":
    sys.exit(main())
