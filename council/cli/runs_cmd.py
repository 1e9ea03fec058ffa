"""``council runs list|show|export``, ``council resume`` and ``council replay``: runs in the
ledger. A run is named by its ID, a unique prefix of it, or ``latest``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from council.cli.arguments import runs_folder
from council.cli.output import (
    parse_endpoints,
    parse_pairs,
    print_rows,
    progress_sinks,
    report_run,
)


def _ledger(args: argparse.Namespace) -> Any:
    from council.store.ledger import Ledger

    return Ledger.existing(args.out)


def _status(args: argparse.Namespace, run: dict[str, Any]) -> str:
    """A run left 'running' by a process that is gone reads as interrupted."""
    from council.store.lease import is_live

    if run["status"] == "running" and not is_live(args.out, run["run_id"]):
        return "interrupted"
    return str(run["status"])


def _list(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    rows = [
        {
            "run_id": r["run_id"], "question": r["question"], "status": _status(args, r),
            "protocol": r["protocol"], "started": r["started_at"], "finished": r["finished_at"],
            "calls": r["calls"],
        }
        for r in ledger.runs()
    ]  # fmt: skip
    columns = ["run_id", "status", "question"]
    if args.outcomes:
        rows = [row | _outcome_columns(ledger.outcome(row["run_id"])) for row in rows]
        rows = [row for row in rows if row["outcome"] != "-"]
        columns = ["run_id", "outcome", "review_by", "owner", "prediction"]
    print_rows(rows, args.json, columns)
    return 0


def _outcome_columns(outcome: Any) -> dict[str, Any]:
    from datetime import date

    if outcome is None:
        return {"outcome": "-", "review_by": "-", "owner": "-", "prediction": "-"}
    overdue = outcome.status == "open" and outcome.review_by and outcome.review_by < date.today()
    return {
        "outcome": outcome.status + (" (review overdue)" if overdue else ""),
        "review_by": str(outcome.review_by or "-"), "owner": outcome.owner or "-",
        "prediction": outcome.prediction or "-", "note": outcome.note,
    }  # fmt: skip


def _outcome(args: argparse.Namespace) -> int:
    """Record, or update, whether a run's verdict proved right."""
    from datetime import date

    from council.errors import ConfigError
    from council.records.run import Outcome, utc_now
    from council.store.loader import resolve_run_id

    ledger = _ledger(args)
    run_id = resolve_run_id(ledger, args.run_id)
    previous = ledger.outcome(run_id)
    given = {key: getattr(args, key) for key in ("prediction", "owner", "status", "note")}
    if args.review_by is not None:
        try:
            given["review_by"] = date.fromisoformat(args.review_by)
        except ValueError:
            raise ConfigError(
                f"--review-by takes a date as YYYY-MM-DD, not '{args.review_by}'"
            ) from None
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        raise ConfigError(
            "say what to record: --prediction, --owner, --review-by, --status, --note"
        )
    base = previous.model_dump() if previous else {"run_id": run_id}
    outcome = Outcome.model_validate({**base, **given, "recorded_at": utc_now()})
    ledger.record_outcome(outcome)
    print(json.dumps(outcome.to_json(), indent=2) if args.json else
          f"{run_id}: {outcome.status}" + (f", review by {outcome.review_by}"
                                           if outcome.review_by else ""))  # fmt: skip
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.store.loader import resolve_run_id

    ledger = _ledger(args)
    run_id = resolve_run_id(ledger, args.run_id)
    run = ledger.run(run_id) or {}
    calls = ledger.calls(run_id)
    run["status"] = _status(args, run)
    if args.json:
        shown = {**run, "seats": json.loads(run["seats"]), "config": json.loads(run["config"])}
        print(json.dumps({**shown, "calls": calls}, indent=2, ensure_ascii=False))
        return 0
    print(f"{run['run_id']}  {run['status']}  {run['protocol']}\n{run['question']}")
    if run["error"]:
        print(f"error: {run['error']}")
    for call in calls:
        state = "reused" if call["reused"] else ("ok" if not call["error"] else call["error"])
        tokens = f"{call['prompt_tokens']} -> {call['completion_tokens']} tokens"
        print(f"  {call['stage']:<18} r{call['round']} {call['seat']:<12} {call['model']:<32} "
              f"{call['latency_s']:6.2f} s  {tokens}  {state}")  # fmt: skip
    if args.prompts:
        for call in calls:
            print(f"\n=== {call['stage']} r{call['round']} · {call['seat']} ===")
            for message in (call["request"] or {}).get("messages", []):
                print(f"--- {message['role']} ---\n{message['content']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from council.store.folder import export_run
    from council.store.loader import resolve_run_id

    ledger = _ledger(args)
    run_id = resolve_run_id(ledger, args.run_id)
    folder = Path(args.to) if args.to else Path(args.out) / run_id
    for path in export_run(ledger, run_id, folder):
        print(path)
    return 0


def _resume(args: argparse.Namespace) -> int:
    from council.app.resume import resume

    result = resume(
        args.run_id, args.out, sinks=progress_sinks(args.quiet),
        endpoints=parse_endpoints(args.endpoint),
    )  # fmt: skip
    return report_run(result, args.json)


def _replay(args: argparse.Namespace) -> int:
    from council.app.resume import replay

    result = replay(
        args.run_id, args.out, seats=parse_pairs(args.seat, "--seat"),
        sinks=progress_sinks(args.quiet), endpoints=parse_endpoints(args.endpoint),
    )  # fmt: skip
    return report_run(result, args.json)


def register(commands: Any) -> None:
    runs = commands.add_parser("runs", help="runs recorded in the ledger")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list runs, newest first")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a run and every call it made")
    show.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    show.add_argument("--prompts", action="store_true", help="print every prompt a seat saw")
    show.set_defaults(handler=_show)
    export = actions.add_parser(
        "export", help="write a run's events.jsonl and transcript.md from the ledger"
    )
    export.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    export.add_argument("--to", help="folder to write to (default: the run's own folder)")
    export.set_defaults(handler=_export)
    listing.add_argument(
        "--outcomes", action="store_true", help="runs with a recorded outcome, and its state"
    )
    for parser in (listing, show, export):
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--out", default="runs", type=runs_folder, help="the runs folder (default: runs)"
        )

    outcome = commands.add_parser(
        "outcome", help="record whether a run's verdict proved right, and when to look again"
    )
    outcome.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    outcome.add_argument("--prediction", help="what the verdict predicts, to check later")
    outcome.add_argument("--owner", help="who answers for it")
    outcome.add_argument("--review-by", metavar="YYYY-MM-DD", help="when to look again")
    outcome.add_argument("--status", choices=["open", "confirmed", "revised", "reversed"])
    outcome.add_argument("--note", help="what happened")
    outcome.add_argument("--json", action="store_true")
    outcome.add_argument(
        "--out", default="runs", type=runs_folder, help="the runs folder (default: runs)"
    )
    outcome.set_defaults(handler=_outcome)

    resume = commands.add_parser(
        "resume", help="continue a stopped run; completed calls are reused"
    )
    resume.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    resume.set_defaults(handler=_resume)
    replay = commands.add_parser("replay", help="rerun a run with seats changed, reusing the rest")
    replay.add_argument("run_id", help="run ID, a unique prefix of it, or 'latest'")
    replay.add_argument("--seat", action="append", default=[], metavar="PERSONA=MODEL")
    replay.set_defaults(handler=_replay)
    for parser in (resume, replay):
        parser.add_argument("--json", action="store_true", help="the run as JSON, as convene")
        parser.add_argument(
            "--out", default="runs", type=runs_folder, help="the runs folder (default: runs)"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress display")
        parser.add_argument(
            "--endpoint", action="append", default=[], metavar="MODEL=URL",
            help="send a model to this OpenAI-compatible base URL (credentials are not stored)",
        )  # fmt: skip
