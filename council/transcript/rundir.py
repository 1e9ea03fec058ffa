"""The run folder: ``runs/<timestamp>-<slug>/`` with ``events.jsonl`` and ``transcript.md``.

Each event is one JSON line, flushed and fsynced as it happens, so a turn is on disk before any
later stage reads it and a crash loses nothing that finished.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from council.engine.observer import Observer
from council.protocols.spec import LoopStage, SpeakingStage
from council.transcript.markdown import render_transcript
from council.transcript.records import RunHeader, RunResult, Tally, Turn, utc_now


def slugify(text: str, max_length: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "run"


def new_run_id(question: str) -> str:
    """``20261125-163812-3f9a-should-cities-ban-cars``: sortable, unique, readable."""
    stamp = utc_now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}-{slugify(question)}"


class RunDirectory(Observer):
    def __init__(self, root: Path, run_id: str, *, resume: bool = False) -> None:
        self.path = Path(root) / run_id
        self.path.mkdir(parents=True, exist_ok=resume)  # a resumed run appends to its log
        self.events_path = self.path / "events.jsonl"
        self.transcript_path = self.path / "transcript.md"
        self._events = self.events_path.open("a", encoding="utf-8")
        self._header: RunHeader | None = None
        self._turns: list[Turn] = []

    def _write(self, event: str, payload: dict[str, Any]) -> None:
        line = json.dumps({"event": event, "at": utc_now().isoformat(), **payload})
        self._events.write(line + "\n")
        self._events.flush()
        os.fsync(self._events.fileno())

    def run_started(self, header: RunHeader) -> None:
        self._header = header
        self._write("run_started", header.to_json())

    def stage_started(self, stage: SpeakingStage, seats: list[str]) -> None:
        self._write("stage_started", {"stage": stage.id, "seats": seats})

    def turn_finished(self, turn: Turn) -> None:
        self._turns.append(turn)
        self._write("turn", turn.to_json())

    def stage_finished(self, stage: SpeakingStage, turns: list[Turn]) -> None:
        ok = sum(t.ok for t in turns)
        self._write("stage_finished", {"stage": stage.id, "turns": len(turns), "ok": ok})

    def stage_skipped(self, stage: SpeakingStage, reason: str) -> None:
        self._write("stage_skipped", {"stage": stage.id, "reason": reason})

    def tally_made(self, tally: Tally) -> None:
        self._write("tally", tally.to_json())

    def loop_round_finished(self, loop: LoopStage, round: int, stop: str | None) -> None:
        self._write("loop_round", {"loop": loop.id, "round": round, "stop": stop})

    def run_finished(self, result: RunResult) -> None:
        summary = result.to_json()
        for logged in ("turns", "tallies"):  # already logged one by one
            summary.pop(logged)
        self._write("run_finished", summary)
        self._events.close()
        self.transcript_path.write_text(render_transcript(result), encoding="utf-8")


def load_run(run_dir: Path | str) -> RunResult:
    """Read a run back from its ``events.jsonl`` (a crashed run reads as far as it got)."""
    from council.errors import ConfigError

    path = Path(run_dir) / "events.jsonl"
    if not path.is_file():
        raise ConfigError(f"'{run_dir}' is not a run folder: it has no events.jsonl")
    header: dict[str, Any] | None = None
    turns: dict[tuple[str, int, str], Turn] = {}
    tallies: list[Tally] = []
    finished: dict[str, Any] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{number}: not a JSON event (a cut-off last line?)") from None
        kind = event.pop("event", None)
        event.pop("at", None)
        if kind == "run_started" and header is None:
            header = event
        elif kind == "turn":
            turn = Turn.model_validate(event)
            turns[(turn.stage, turn.round, turn.seat)] = turn  # a resumed run's answer wins
        elif kind == "tally":
            tallies.append(Tally.model_validate(event))
        elif kind == "run_finished":
            finished = event
    if header is None:
        raise ConfigError(f"{path}: no run_started event")
    return RunResult.model_validate(
        {
            **header,
            "status": finished.get("status", "failed"),
            "error": finished.get("error", "the run did not finish"),
            "turns": list(turns.values()),
            "tallies": tallies,
            "loops": finished.get("loops", []),
            "skipped": finished.get("skipped", []),
            "absent": finished.get("absent", []),
            "synthesis": finished.get("synthesis"),
            "finished_at": finished.get("finished_at", header["started_at"]),
        }
    )
