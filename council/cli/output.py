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


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None or empty -> ``[]``."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def parse_pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    from council.errors import ConfigError

    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(f"{flag} expects NAME=VALUE, got '{value}'")
        pairs[key.strip()] = rest.strip()
    return pairs


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
    """The synthesis and run folder (or the whole run as JSON). Exit 0 when it completed with
    every seat, 3 when it completed without some, 1 when it did not complete."""
    if as_json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        if result.absent:
            print(f"[Synthesis without {len(result.absent)} absent seat(s): "
                  + "; ".join(result.absent) + "]\n")  # fmt: skip
        print(result.synthesis or "")
        print(f"\nRun folder: {result.run_dir}")
    if result.status != "completed":
        print(f"council: run {result.status}: {result.error}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if result.absent:
        print(f"council: run completed with {len(result.absent)} seat(s) absent: "
              + "; ".join(result.absent), file=sys.stderr)  # fmt: skip
        return EXIT_SEAT_ABSENT
    return 0


def parse_endpoints(values: Sequence[str]) -> dict[str, str]:
    """``--endpoint MODEL=URL`` pairs, each URL an http(s) address with a host."""
    from urllib.parse import urlsplit

    from council.errors import ConfigError

    endpoints = parse_pairs(values, "--endpoint")
    for model, url in endpoints.items():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--endpoint {model}=...: not an http(s) URL with a host")
        if "/" not in model:
            raise ConfigError(f"--endpoint {model}=...: the model must be 'provider/model'")
    return endpoints
