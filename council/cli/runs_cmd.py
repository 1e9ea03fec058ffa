"""``council runs list|show|export``, ``council resume`` and ``council replay``: runs in the
ledger. A run is named by its ID, a unique prefix of it, or ``latest``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from council.cli.arguments import parse_endpoints, positive_int, runs_folder, split_list
from council.cli.output import print_rows, progress_sinks, report_run
from council.cli.project import runs_folder_of
from council.cli.seat_options import CALLS, add_replay_options, detected

OUT_HELP = "the runs folder (default: the project's 'out', else the runs home)"


def _ledger(args: argparse.Namespace) -> Any:
    from council.store.ledger import Ledger

    return Ledger.existing(runs_folder_of(args))


def _status(args: argparse.Namespace, run: dict[str, Any]) -> str:
    """A run left 'running' by a process that is gone reads as interrupted."""
    from council.store.lease import is_live

    if run["status"] == "running" and not is_live(runs_folder_of(args), run["run_id"]):
        return "interrupted"
    return str(run["status"])


def _query(args: argparse.Namespace) -> Any:
    from datetime import date

    from council.base.errors import ConfigError
    from council.store.query import RunQuery

    days: dict[str, date | None] = {}
    for flag in ("since", "until"):
        text = getattr(args, flag)
        try:
            days[flag] = date.fromisoformat(text) if text else None
        except ValueError:
            raise ConfigError(f"--{flag} takes a date as YYYY-MM-DD, not '{text}'") from None
    # 'interrupted' is not stored: it is a 'running' run whose process is gone.
    stored_status = "running" if args.status == "interrupted" else args.status
    return RunQuery(
        question=args.question,
        persona=args.persona,
        model=args.model,
        protocol=args.protocol,
        status=stored_status,
        limit=args.limit,
        **days,
    )


def _list(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    rows = [
        {
            "run_id": r["run_id"],
            "question": r["question"],
            "status": _status(args, r),
            "protocol": r["protocol"],
            "started": r["started_at"],
            "finished": r["finished_at"],
            "calls": r["calls"],
            "seats": {seat: s["model"] for seat, s in json.loads(r["seats"]).items()},
            "follows": r.get("parent_run"),  # a follow-up: the run it follows
        }
        for r in ledger.runs(_query(args))
    ]
    if args.status:
        rows = [row for row in rows if row["status"] == args.status]
    columns = ["run_id", "status", "started", "protocol", "question"]
    if not args.json:  # a follow-up's question reads as one: marked, with the run it follows
        rows = [row | {"question": _marked(row)} for row in rows]
    if args.outcomes:
        rows = [row | _outcome_columns(ledger.outcome(row["run_id"])) for row in rows]
        rows = [row for row in rows if row["outcome"] != "-"]
        columns = ["run_id", "outcome", "review_by", "owner", "prediction"]
    print_rows(rows, args.json, columns)
    return 0


def _marked(row: dict[str, Any]) -> str:
    if row["follows"] is None:
        return str(row["question"])
    return f"[follow-up of {row['follows']}] {row['question']}"


def _outcome_columns(outcome: Any) -> dict[str, Any]:
    from datetime import date

    if outcome is None:
        return {"outcome": "-", "review_by": "-", "owner": "-", "prediction": "-"}
    overdue = outcome.status == "open" and outcome.review_by and outcome.review_by < date.today()
    return {
        "outcome": outcome.status + (" (review overdue)" if overdue else ""),
        "review_by": str(outcome.review_by or "-"),
        "owner": outcome.owner or "-",
        "prediction": outcome.prediction or "-",
        "note": outcome.note,
    }


def _outcome(args: argparse.Namespace) -> int:
    """Record, or update, whether a run's verdict proved right."""
    from datetime import date

    from council.base.errors import ConfigError
    from council.records.record import utc_now
    from council.records.run import Outcome
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
    print(
        json.dumps(outcome.to_json(), indent=2)
        if args.json
        else f"{run_id}: {outcome.status}"
        + (f", review by {outcome.review_by}" if outcome.review_by else "")
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.records.describe import describe_audit
    from council.records.fold import fold_events
    from council.store.loader import resolve_run_id

    ledger = _ledger(args)
    run_id = resolve_run_id(ledger, args.run_id)
    run = ledger.run(run_id) or {}
    # The run as its events fold (as convene and load_run read it): its turns, never the
    # ledger's call rows, so --json has convene --json's shape and names.
    result = fold_events(ledger.events(run_id))
    status = _status(args, run)
    thoughts = _reasoning(result.turns) if args.reasoning else None
    children = ledger.follow_ups(run_id)  # the thread on: runs that follow this one
    if args.json:
        shown = result.to_json() | {
            "status": status,
            "error": run.get("error", result.error),
            "config": json.loads(run["config"]),
            "follow_ups": children,
        }
        extra = {"reasoning": thoughts} if thoughts is not None else {}
        print(json.dumps(shown | extra, indent=2, ensure_ascii=False))
        return 0
    print(f"{run_id}  {status}  {result.protocol}\n{result.question}")
    if run.get("error"):
        print(f"error: {run['error']}")
    if result.parent_run:
        print(f"follows: {result.parent_run}  (thread: {' > '.join(result.thread)})")
    if children:
        print(f"follow-ups: {', '.join(children)}")
    for turn in result.turns:
        state = "reused" if turn.reused else ("ok" if not turn.error else turn.error)
        print(
            f"  {turn.stage:<18} r{turn.round} {turn.seat:<12} {turn.model:<32} "
            f"{turn.latency_s:6.2f} s{_waited(turn)}  {_tokens(turn)}  {state}"
        )
    for audit in result.audits:  # beside the verdict's turn: what its audits found
        print("\n".join(describe_audit(audit)))
    for tally in result.tallies:  # effective votes beside each tally that has them (issue 31)
        found = tally.effective_votes
        if found is not None:
            print(
                f"  {tally.stage} r{tally.round}: {found.n} seats, about {found.n_eff:.1f} "
                f"independent votes ({found.low:.1f} to {found.high:.1f}); basis: {found.basis}"
            )
    if args.prompts:
        for turn in result.turns:
            print(f"\n=== {turn.stage} r{turn.round} · {turn.seat} ===")
            for message in turn.request.messages if turn.request else []:
                print(f"--- {message['role']} ---\n{message['content']}")
    for thought in thoughts or []:
        tokens = f" ({thought['reasoning_tokens']} tokens)" if thought["reasoning_tokens"] else ""
        print(
            f"\n=== reasoning: {thought['stage']} r{thought['round']} · {thought['seat']}"
            f"{tokens} ===\n{thought['reasoning']}"
        )
    return 0


def _tokens(turn: Any) -> str:
    """What is known of a turn's tokens: a failed call's are not (never ``None -> None``)."""
    given, got = turn.prompt_tokens, turn.completion_tokens
    if given is None and got is None:
        return "tokens unknown"
    return f"{'?' if given is None else given} -> {'?' if got is None else got} tokens"


def _waited(turn: Any) -> str:
    """A turn's time before its model worked on it (queued, starting); the latency shown
    beside it is the model's own."""
    parts = [
        f"queued {turn.queue_s:.2f} s" if turn.queue_s >= 0.005 else "",
        f"start {turn.start_s:.2f} s" if turn.start_s >= 0.005 else "",
    ]
    return f" ({', '.join(p for p in parts if p)})" if any(parts) else ""


def _reasoning(turns: list[Any]) -> list[dict[str, Any]]:
    """Each turn's reasoning, kept apart from its answer in the run's record."""
    return [
        {
            "stage": t.stage,
            "round": t.round,
            "seat": t.seat,
            "model": t.model,
            "reasoning_tokens": t.reasoning_tokens,
            "reasoning": t.reasoning,
        }
        for t in turns
        if t.reasoning or t.reasoning_tokens
    ]


def _export(args: argparse.Namespace) -> int:
    from council.base.errors import StorageError
    from council.store.folder import export_run
    from council.store.loader import resolve_run_id

    ledger = _ledger(args)
    run_id = resolve_run_id(ledger, args.run_id)
    folder = Path(args.to) if args.to else runs_folder_of(args) / run_id
    try:
        written = export_run(ledger, run_id, folder)
    except OSError as exc:  # a read-only archive: the run folder cannot be written
        raise StorageError(
            f"cannot write {exc.filename or folder}: {exc.strerror}; give "
            "--to FOLDER to export elsewhere"
        ) from None
    for path in written:
        print(path)
    return 0


def _resume(args: argparse.Namespace) -> int:
    from council.app.resume import resume

    result = resume(
        args.run_id,
        runs_folder_of(args),
        sinks=progress_sinks(args.quiet),
        endpoints=parse_endpoints(args.endpoint),
    )
    return report_run(result, args.json)


def _replay(args: argparse.Namespace) -> int:
    from council.app.resume import SeatChanges, replay
    from council.cli.project import slots_in_models
    from council.cli.spec_flags import spec_flags
    from council.records.options import with_options

    given = slots_in_models(spec_flags(args))
    seats = dict(given.get("seats", {}))
    if given.get("chairman"):
        seats.setdefault("chair", given["chairman"])
    endpoints = dict(given.get("endpoints", {}))
    model, pool, tiers = given.get("model"), split_list(given.get("models")), None
    if model == "auto":
        model, pool, tiers = detected(pool, endpoints)
    # Call options given replace the spec's defaults; none given: the calls as recorded.
    calls = {key: value for key, value in given.items() if key in CALLS}
    spec = with_options(
        {key: given[key] for key in ("fallbacks", "reasoning_effort") if key in given}
    )
    changes = SeatChanges(
        seats=seats,
        model=model,
        models=pool,
        fallbacks=spec.fallbacks,
        seat_slots=given.get("seat_slots"),
        tiers=tiers,
        use_model_hints=bool(given.get("use_model_hints")),
        calls=with_options(calls).calls if calls else None,
        reasoning_effort=dict(spec.reasoning_effort),
    )
    result = replay(
        args.run_id,
        runs_folder_of(args),
        changes=changes,
        sinks=progress_sinks(args.quiet),
        endpoints=endpoints,
    )
    return report_run(result, args.json)


RUN_HELP = "run ID, a unique prefix of it, or 'latest'"


def _add_filters(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--question", metavar="TEXT", help="runs whose question contains TEXT")
    listing.add_argument("--persona", metavar="NAME", help="runs where NAME held a seat")
    listing.add_argument("--model", metavar="TEXT", help="runs with a seat on a model like TEXT")
    listing.add_argument("--protocol", metavar="NAME", help="runs of this protocol")
    listing.add_argument(
        "--status",
        choices=["completed", "failed", "running", "interrupted", "stopped"],
        help="runs in this state",
    )
    listing.add_argument("--since", metavar="YYYY-MM-DD", help="runs started on or after")
    listing.add_argument("--until", metavar="YYYY-MM-DD", help="runs started on or before")
    listing.add_argument("--limit", type=positive_int, help="at most this many, newest first")
    listing.add_argument(
        "--outcomes", action="store_true", help="runs with a recorded outcome, and its state"
    )


def _register_runs(commands: Any) -> None:
    runs = commands.add_parser("runs", help="runs recorded in the ledger")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list runs, newest first, filtered")
    _add_filters(listing)
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a run and every turn it took")
    show.add_argument("run_id", help=RUN_HELP)
    show.add_argument("--prompts", action="store_true", help="print every prompt a seat saw")
    show.add_argument(
        "--reasoning",
        action="store_true",
        help="print each reply's reasoning (reasoning models), kept apart from its answer",
    )
    show.set_defaults(handler=_show)
    export = actions.add_parser(
        "export", help="write a run's events.jsonl and transcript.md from the ledger"
    )
    export.add_argument("run_id", help=RUN_HELP)
    export.add_argument("--to", help="folder to write to (default: the run's own folder)")
    export.set_defaults(handler=_export)
    for parser in (listing, show, export):
        parser.add_argument("--json", action="store_true", help="JSON on stdout")
        parser.add_argument("--out", type=runs_folder, help=OUT_HELP)


def _register_outcome(commands: Any) -> None:
    outcome = commands.add_parser(
        "outcome", help="record whether a run's verdict proved right, and when to look again"
    )
    outcome.add_argument("run_id", help=RUN_HELP)
    outcome.add_argument("--prediction", help="what the verdict predicts, to check later")
    outcome.add_argument("--owner", help="who answers for it")
    outcome.add_argument("--review-by", metavar="YYYY-MM-DD", help="when to look again")
    outcome.add_argument(
        "--status",
        choices=["open", "confirmed", "revised", "reversed"],
        help="where the verdict stands (a new record starts open)",
    )
    outcome.add_argument("--note", help="what happened")
    outcome.add_argument("--json", action="store_true", help="JSON on stdout")
    outcome.add_argument("--out", type=runs_folder, help=OUT_HELP)
    outcome.set_defaults(handler=_outcome)


def _register_rerun(commands: Any) -> None:
    resume = commands.add_parser(
        "resume", help="continue a stopped run; completed calls are reused"
    )
    resume.add_argument("run_id", help=RUN_HELP)
    resume.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="MODEL=URL",
        help="send a model to this OpenAI-compatible base URL (credentials are not stored)",
    )
    resume.set_defaults(handler=_resume)
    replay = commands.add_parser(
        "replay", help="rerun a run with its seats changed, reusing every identical call"
    )
    replay.add_argument("run_id", help=RUN_HELP)
    add_replay_options(replay)
    replay.set_defaults(handler=_replay)
    for parser in (resume, replay):
        parser.add_argument("--json", action="store_true", help="the run as JSON, as convene")
        parser.add_argument("--out", type=runs_folder, help=OUT_HELP)
        parser.add_argument("--quiet", action="store_true", help="no progress display")


def register(commands: Any) -> None:
    _register_runs(commands)
    _register_outcome(commands)
    _register_rerun(commands)
