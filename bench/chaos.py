"""Fault tolerance under injected faults: many councils against a provider that fails 30% of
requests (429s with Retry-After, 500s, 503s, hangs, malformed JSON, truncated bodies).

    python -m bench.chaos [RUNS] [RETRY_AFTER_S]     # writes bench/chaos.json

The issue's setting is ``python -m bench.chaos 50 120``: every 429 asks for two minutes; the
backoff maximum caps that wait, so no turn stalls past its timeout and retries.

Figures: runs completed; turns lost (finished turns missing from the ledger or the result,
or recorded without having finished: must be 0); extra calls (requests beyond one per
successful turn); and the longest stall (the slowest turn, retries and backoff included).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from council import Council
from council.seats import CallSettings
from council.testing import FakeProvider

HERE = Path(__file__).resolve().parent
FAULTS = {
    "error_rates": {429: 0.10, 500: 0.08, 503: 0.05},
    "hang_rate": 0.03,
    "malformed_rate": 0.02,
    "truncate_rate": 0.02,
}
FAULT_RATE = 0.30  # the rates above add up to this
CALLS = CallSettings(timeout_s=1.0, max_attempts=6, backoff_initial_s=0.05, backoff_max_s=0.5)


def main(runs: int = 50, retry_after_s: float = 0.2) -> dict[str, object]:
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeProvider(
            lambda body: f"Answer {len(json.dumps(body['messages']))}.",
            latency=(0.01, 0.05),
            retry_after_s=retry_after_s,
            hang_s=3.0,
            seed=7,
            **FAULTS,  # type: ignore[arg-type]
        ) as fake,
    ):
        out = Path(folder)
        council = Council(
            ["popper", "kuhn", "meadows"],
            protocol="council",
            model="openai/chaos",
            endpoints={"openai/chaos": fake.api_base},
            runs_dir=out,
            calls=CALLS,
        )
        results = [council.convene(f"Question number {i}?") for i in range(runs)]
        with sqlite3.connect(out / "ledger.sqlite") as db:
            recorded = {
                (r[0], r[1], r[2], r[3])
                for r in db.execute(
                    "SELECT run_id, stage, round, seat FROM calls WHERE error IS NULL"
                )
            }
            hashes = {
                r[0] for r in db.execute("SELECT request_hash FROM calls WHERE error IS NULL")
            }
        finished = {(r.run_id, t.stage, t.round, t.seat) for r in results for t in r.turns if t.ok}
        turns = [t for r in results for t in r.turns]
        figures = {
            "runs": runs,
            "fault_rate": FAULT_RATE,
            "retry_after_seconds": retry_after_s,
            "backoff_max_seconds": CALLS.backoff_max_s,
            "runs_completed": sum(r.status == "completed" for r in results),
            "turns": len(turns),
            "turns_failed_for_good": sum(not t.ok for t in turns),
            "turns_lost": len(finished - recorded) + len(recorded - finished),
            "requests": fake.request_count,
            "outcomes": dict(fake.outcomes),
            "extra_calls": fake.request_count - sum(t.ok for t in turns),
            "extra_calls_per_turn": round((fake.request_count - len(turns)) / len(turns), 3),
            "longest_stall_seconds": round(max(t.latency_s for t in turns), 2),
            "median_turn_seconds": round(sorted(t.latency_s for t in turns)[len(turns) // 2], 3),
            "ledger_request_hashes": len(hashes),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    (HERE / "chaos.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description="Many councils against a provider that fails 30% of requests; writes "
        "bench/chaos.json.",
    )
    parser.add_argument("runs", nargs="?", type=int, default=50, help="councils (default 50)")
    parser.add_argument(
        "retry_after_s",
        nargs="?",
        type=float,
        default=0.2,
        help="the Retry-After each 429 asks for, in seconds (default 0.2)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or not args.retry_after_s >= 0:
        parser.error("RUNS must be at least 1 and RETRY_AFTER_S a number of seconds, 0 or more")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    print(json.dumps(main(arguments.runs, arguments.retry_after_s), indent=2))
