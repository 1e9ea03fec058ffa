"""Printing runs and listings for people (aligned columns) or for tools (JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from council.records.events import EventSink
    from council.records.run import RunResult

EXIT_RUN_FAILED = 1
# The run finished, but without every seat: its synthesis speaks for fewer voices than asked.
EXIT_SEAT_ABSENT = 3
# The run finished, but its verdict failed council's checks even when the chair was asked once
# more (missing sections, the wrong outcome, an unnamed dealbreaker, too long): read it so.
EXIT_VERDICT_UNCHECKED = 4
# What seats a real model instead of a bundled stand-in (``council models`` lists the models
# reachable here; ``--model auto`` takes the first provider whose key is set).
REAL_MODEL_COMMAND = 'council convene --model auto "<question>"'


def print_rows(rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(list(rows), indent=2, ensure_ascii=False))
        return
    widths = [max((len(str(row[c])) for row in rows), default=0) for c in columns[:-1]]
    for row in rows:
        cells = [f"{row[c]!s:<{w}}" for c, w in zip(columns[:-1], widths, strict=True)]
        print("  ".join([*cells, str(row[columns[-1]])]))


def progress_sinks(quiet: bool) -> list[EventSink]:
    if quiet:
        return []
    from council.cli.progress import ProgressDisplay

    return [ProgressDisplay()]


def report_run(result: RunResult, as_json: bool) -> int:
    """The synthesis, the run folder, the tally and, on a bundled model, what it is and how to
    seat a real one (or the whole run as JSON). Exit 0 when it completed with every seat and a
    checked verdict; 1 when it did not complete; 4 when its verdict is unchecked; 3 when it
    completed without some seats."""
    if as_json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        if result.absent:
            print(
                f"[Synthesis without {len(result.absent)} absent seat(s): "
                + "; ".join(result.absent)
                + "]\n"
            )
        print(result.synthesis or "")
        print(f"\nRun folder: {result.run_dir}")
        for line in closing_lines(result):
            print(line)
    if result.status != "completed":
        print(f"council: run {result.status}: {result.error}", file=sys.stderr)
        return EXIT_RUN_FAILED
    check = result.verdict_check
    if check is not None and check.status == "unchecked":
        print(
            "council: verdict unchecked (asked once more): " + "; ".join(check.reasons),
            file=sys.stderr,
        )
        return EXIT_VERDICT_UNCHECKED
    if result.absent:
        print(
            f"council: run completed with {len(result.absent)} seat(s) absent: "
            + "; ".join(result.absent),
            file=sys.stderr,
        )
        return EXIT_SEAT_ABSENT
    return 0


def closing_lines(result: RunResult) -> list[str]:
    """How a run's report ends: the last vote's tally, then, where a seat sat on a bundled
    model, one line saying what that model is and the command that seats a real one."""
    from council.records.describe import describe_tally
    from council.seats.local import BUNDLED_MODELS

    lines = []
    check = result.verdict_check
    if check is not None and check.status == "unchecked":
        lines += ["", "[Verdict unchecked: " + "; ".join(check.reasons) + "]"]
    votes = [t for t in result.tallies if t.kind == "vote"]
    if votes:
        lines += ["", describe_tally(votes[-1], {}).replace("**", "")]
    bundled = {m.model_string: m for m in BUNDLED_MODELS.values()}
    used = [bundled[m] for m in dict.fromkeys(s.model for s in result.seats) if m in bundled]
    if used:
        sizes = " and ".join(f"{m.model_string} ({m.parameters} parameters)" for m in used)
        what = (
            "is an offline stand-in that runs"
            if len(used) == 1
            else "are offline stand-ins that run"
        )
        lines += [
            "",
            f"Note: {sizes} {what} with no key: expect generic, sometimes broken "
            "prose, not advice.",
            f"Seat a real model: {REAL_MODEL_COMMAND} (council models lists what is reachable).",
        ]
    return lines
