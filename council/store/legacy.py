"""Runs recorded before the event stream: first-round ledgers and run folders.

The first round wrote untyped events (``{"event": "turn", ...}``) to ``events.jsonl`` and hand-
kept rows to the ledger. These read them into today's events, so an old ledger migrates and an
old run folder (such as the committed experiments) still loads. Nothing writes this format.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from council.records.events import (
    Event,
    LoopFinished,
    LoopRound,
    RunFinished,
    RunStarted,
    SeatAbsent,
    StageFinished,
    StageSkipped,
    StageStarted,
    TallyMade,
    TurnFinished,
    event_json,
)
from council.records.run import LoopOutcome, RunHeader, Tally, Turn
from council.records.settings import (
    Budget,
    CallSettings,
    RecordedCard,
    RunConfig,
    SamplingSettings,
)


def is_legacy(first_line: str) -> bool:
    return first_line.lstrip().startswith("{") and '"event":' in first_line.split(",", 1)[0]


def _stage_order(rows: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["stage"] for row in rows if row.get("stage")))


def legacy_events(lines: Iterable[str], config: RunConfig | None = None) -> list[Event]:
    """Events of a first-round ``events.jsonl``; raises ValueError on a line it cannot read."""
    rows = [json.loads(line) for line in lines if line.strip()]
    stages = _stage_order(r for r in rows if r.get("event") in ("stage_started", "turn"))
    events: list[Event] = []
    for row in rows:
        kind, at = row.pop("event", None), row.pop("at", None)
        run_id = row.get("run_id") or (events[0].run_id if events else "")
        common: dict[str, Any] = {"run_id": run_id, **({"at": at} if at else {})}
        if kind == "run_started":
            header = RunHeader.model_validate({**row, "stages": stages})
            events.append(RunStarted(**common, header=header, config=config))
        elif kind == "stage_started":
            events.append(
                StageStarted(**common, stage=row["stage"], label=row["stage"], seats=row["seats"])
            )
        elif kind == "turn":
            events.append(TurnFinished(**common, turn=Turn.model_validate(row)))
        elif kind == "tally":
            events.append(TallyMade(**common, tally=Tally.model_validate(row)))
        elif kind == "stage_finished":
            events.append(
                StageFinished(**common, stage=row["stage"], answered=row["ok"], seats=row["turns"])
            )
        elif kind == "stage_skipped":
            events.append(StageSkipped(**common, stage=row["stage"], reason=row["reason"]))
        elif kind == "loop_round":
            events.append(
                LoopRound(**common, loop=row["loop"], round=row["round"], stop=row["stop"])
            )
        elif kind == "run_finished":
            events += _finish(common, row)
    return events


def _finish(common: dict[str, Any], row: dict[str, Any]) -> list[Event]:
    events: list[Event] = [
        LoopFinished(**common, outcome=LoopOutcome.model_validate(loop))
        for loop in row.get("loops", [])
    ]
    for entry in row.get("absent", []):
        seat, _, reason = entry.partition(": ")
        events.append(SeatAbsent(**common, seat=seat, reason=reason))
    events.append(
        RunFinished(
            **common,
            status=row["status"],
            error=row.get("error"),
            synthesis=row.get("synthesis"),
            finished_at=row["finished_at"],
        )
    )
    return events


def _card(path: str) -> RecordedCard:
    text = Path(path).read_text(encoding="utf-8")
    return RecordedCard(name=Path(path).stem, path=path, text=text)


def legacy_config(config: dict[str, Any]) -> RunConfig | None:
    """Today's ``RunConfig`` from a first-round config dict; None when a file it names is gone
    (the run can still be read, not resumed)."""
    try:
        return RunConfig(
            panel=[_card(path) for path in config["personas"]],
            chair=_card(config["chair"]),
            protocol_path=config["protocol"],
            protocol_text=Path(config["protocol"]).read_text(encoding="utf-8"),
            seats=config["seats"],
            endpoints=config.get("endpoints", {}),
            sampling=SamplingSettings(**config["sampling"]),
            calls=CallSettings(**config["calls"]),
            budget=Budget(**config["budget"]) if config.get("budget") else None,
            label_seed=config["label_seed"],
        )
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _events_from_rows(
    run: sqlite3.Row, calls: list[sqlite3.Row], config: RunConfig | None
) -> list[Event]:
    turns = [Turn.model_validate({**dict(call), "reused": bool(call["reused"])}) for call in calls]
    header = RunHeader.model_validate(
        {
            **dict(run),
            "seats": list(json.loads(run["seats"]).values()),
            "stages": _stage_order(dict(c) for c in calls),
        }
    )
    common = {"run_id": run["run_id"], "at": run["started_at"]}
    events: list[Event] = [RunStarted(**common, header=header, config=config)]
    events += [TurnFinished(run_id=run["run_id"], at=t.started_at, turn=t) for t in turns]
    if run["status"] != "running":
        events.append(
            RunFinished(
                run_id=run["run_id"],
                at=run["finished_at"] or run["started_at"],
                status=run["status"],
                error=run["error"],
                finished_at=run["finished_at"] or run["started_at"],
            )
        )
    return events


def backfill_events(db: sqlite3.Connection) -> None:
    """Give every first-round run its events: from its run folder's ``events.jsonl`` when that
    is still there and readable, otherwise rebuilt from its ledger rows (no tallies then)."""
    db.row_factory = sqlite3.Row
    for run in db.execute("SELECT * FROM runs").fetchall():
        config = legacy_config(json.loads(run["config"]))
        events: list[Event] | None = None
        folder_log = Path(run["run_dir"] or "") / "events.jsonl"
        if run["run_dir"] and folder_log.is_file():
            try:
                events = legacy_events(folder_log.read_text(encoding="utf-8").splitlines(), config)
            except (ValueError, KeyError, TypeError):
                events = None
        if not events:
            calls = db.execute(
                "SELECT * FROM calls WHERE run_id=? ORDER BY id", (run["run_id"],)
            ).fetchall()
            events = _events_from_rows(run, calls, config)
        db.executemany(
            "INSERT INTO events (run_id, seq, type, body) VALUES (?, ?, ?, ?)",
            [(run["run_id"], seq, e.type, event_json(e)) for seq, e in enumerate(events, 1)],
        )
