"""``council runs list|show``, ``council resume`` and ``council replay``: runs in the ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from council.cli.output import parse_pairs, print_rows, progress_observers, report_run


def _ledger(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from council.errors import ConfigError
    from council.ledger.store import LEDGER_FILE, Ledger

    if not (Path(args.out) / LEDGER_FILE).is_file():
        raise ConfigError(f"no ledger in '{args.out}': convene a council there first (--out)")
    return Ledger.in_folder(args.out)


def _list(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    rows = [
        {
            "run_id": r["run_id"], "question": r["question"], "status": r["status"],
            "protocol": r["protocol"], "started": r["started_at"], "finished": r["finished_at"],
            "calls": len(ledger.calls(r["run_id"])),
        }
        for r in ledger.runs()
    ]  # fmt: skip
    print_rows(rows, args.json, ["run_id", "status", "question"])
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.errors import UnknownNameError

    ledger = _ledger(args)
    run = ledger.run(args.run_id)
    if run is None:
        raise UnknownNameError("run", args.run_id, ledger.run_ids())
    calls = [dict(c) for c in ledger.calls(args.run_id)]
    if args.json:
        print(
            json.dumps({**dict(run), "seats": json.loads(run["seats"]), "calls": calls}, indent=2)
        )
        return 0
    print(f"{run['run_id']}  {run['status']}  {run['protocol']}\n{run['question']}")
    if run["error"]:
        print(f"error: {run['error']}")
    for call in calls:
        state = "reused" if call["reused"] else ("ok" if not call["error"] else call["error"])
        tokens = f"{call['prompt_tokens']} -> {call['completion_tokens']} tokens"
        print(f"  {call['stage']:<18} r{call['round']} {call['seat']:<12} {call['model']:<32} "
              f"{call['latency_s']:6.2f} s  {tokens}  {state}")  # fmt: skip
    return 0


def _resume(args: argparse.Namespace) -> int:
    from council.ledger.resume import resume

    _ledger(args).close()
    return report_run(
        resume(args.run_id, args.out, observers=progress_observers(args.quiet)), args.json
    )


def _replay(args: argparse.Namespace) -> int:
    from council.ledger.resume import replay

    _ledger(args).close()
    result = replay(
        args.run_id, args.out, seats=parse_pairs(args.seat, "--seat"),
        observers=progress_observers(args.quiet),
    )  # fmt: skip
    return report_run(result, args.json)


def register(commands: Any) -> None:
    runs = commands.add_parser("runs", help="runs recorded in the ledger")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list runs, newest first")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a run and every call it made")
    show.add_argument("run_id")
    show.set_defaults(handler=_show)
    for parser in (listing, show):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--out", default="runs", help="the runs folder (default: runs)")

    resume = commands.add_parser(
        "resume", help="continue a stopped run; completed calls are reused"
    )
    resume.add_argument("run_id")
    resume.set_defaults(handler=_resume)
    replay = commands.add_parser("replay", help="rerun a run with seats changed, reusing the rest")
    replay.add_argument("run_id")
    replay.add_argument("--seat", action="append", default=[], metavar="PERSONA=MODEL")
    replay.set_defaults(handler=_replay)
    for parser in (resume, replay):
        parser.add_argument("--json", action="store_true", help="the run as JSON, as convene")
        parser.add_argument("--out", default="runs", help="the runs folder (default: runs)")
        parser.add_argument("--quiet", action="store_true", help="no progress display")
