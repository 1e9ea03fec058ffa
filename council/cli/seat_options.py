"""Who sits where, on the command line: the seating options ``replay`` may change (generated
from ``CouncilSpec`` as convene's are), a pool or seat-slot file, and ``--model auto``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from council.cli.arguments import split_list
from council.cli.spec_flags import add_spec_flags
from council.records.options import options

# The options a replay may change: who sits on which model, and how calls behave.
SEATING = (
    "model",
    "chairman",
    "seats",
    "endpoints",
    "models",
    "seat_slots",
    "fallbacks",
    "use_model_hints",
    "reasoning_effort",
)
CALLS = tuple(option.key for option in options() if option.path[0] == "calls")


def add_replay_options(parser: argparse.ArgumentParser) -> None:
    """Replay's options: each one left unset keeps what the run recorded."""
    add_spec_flags(parser, (*SEATING, *CALLS), recorded=True)


def models_option(value: str | None) -> tuple[Any, list[str]]:
    """``--models``: (seat slots from a YAML file, or None; a comma-separated pool)."""
    if value and value.lower().endswith((".yaml", ".yml")):
        from council.seats.slots import read_seat_slots

        return read_seat_slots(value), []
    return None, split_list(value)


def detected(pool: list[str], endpoints: dict[str, str]) -> tuple[str, list[str], Any]:
    """``--model auto``: the providers whose keys are set and the servers on loopback."""
    from council.seats.detect import detect, tier_models
    from council.seats.local import DEFAULT_LOCAL_MODEL

    found = detect()
    for how in found.how:
        print(f"council: detected {how}", file=sys.stderr)
    if not found.models:
        print("council: no provider key or local server found: the bundled model", file=sys.stderr)
        return DEFAULT_LOCAL_MODEL, pool, None
    endpoints.update(found.endpoints)
    return found.models[0], pool or found.models, tier_models()
