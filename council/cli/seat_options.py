"""The options that say who sits where, shared by ``convene`` and ``replay``: a default model
(or ``auto``), per-seat models, a pool, seat slots, fallbacks, endpoints and call settings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from council.cli.arguments import activation_cap, positive_float, positive_int
from council.cli.output import split_list


def add_seat_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``defaults`` says the help may name council's defaults (convene); a replay keeps the
    recorded seats unless a flag changes them."""
    keep = "" if defaults else " (default: as recorded)"
    parser.add_argument(
        "--model",
        help="default model for every seat, litellm form, or 'auto': seat the council across "
        "the providers whose keys are set and the model servers on loopback"
        + (" (default: the bundled local model)" if defaults else keep),
    )
    parser.add_argument(
        "--chairman", metavar="MODEL",
        help="the chair's model" + (" (default: as --model, or routed from --models)"
                                    if defaults else keep),
    )  # fmt: skip
    parser.add_argument(
        "--seat", action="append", default=[], metavar="PERSONA=MODEL",
        help="put one persona (or 'chair') on its own model; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--endpoint", action="append", default=[], metavar="MODEL=URL",
        help="send a model to an OpenAI-compatible base URL (llama.cpp, vLLM, Ollama); "
        "credentials in it are never stored",
    )  # fmt: skip
    parser.add_argument(
        "--models", metavar="M1,M2,...|FILE.yaml",
        help="a pool of models (polarity pairs sit on different families, the chair on a "
        "family none of them is on), or a seat-slot YAML file",
    )  # fmt: skip
    parser.add_argument(
        "--fallback", action="append", default=[], metavar="PERSONA=M1,M2",
        help="models to try in order when a seat's own model fails for good; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--use-model-hints", action="store_true", help="seat personas on their cards' model hints"
    )
    parser.add_argument(
        "--timeout", type=positive_float,
        help="seconds per model call" + (" (default: 120)" if defaults else keep),
    )  # fmt: skip
    parser.add_argument(
        "--attempts", type=positive_int,
        help="tries per call, with retries" + (" (default: 4)" if defaults else keep),
    )  # fmt: skip
    parser.add_argument(
        "--reasoning-effort", action="append", metavar="[PERSONA=]LEVEL",
        help="how hard reasoning models think before answering: none, minimal, low, medium or "
        "high, for every seat, or PERSONA=LEVEL (or chair=LEVEL) for one; repeatable"
        + (" (default: the provider's)" if defaults else keep),
    )  # fmt: skip
    parser.add_argument(
        "--activation-cap", type=activation_cap, metavar="pN|CEILING",
        help="activations/ seats: cap the projection on the assistant axis at the Nth "
        "percentile of the axis's persona replies, or at CEILING" + (
            " (default: no cap)" if defaults else keep),
    )  # fmt: skip


def fallback_chains(args: argparse.Namespace) -> dict[str, list[str]]:
    from council.cli.output import parse_pairs

    pairs = parse_pairs(args.fallback, "--fallback")
    return {seat: split_list(chain) for seat, chain in pairs.items()}


def reasoning_efforts(values: list[str] | None) -> dict[str, str]:
    """``--reasoning-effort LEVEL`` (every seat, as ``*``) or ``PERSONA=LEVEL``, repeatable."""
    from council.seats.seat import check_reasoning_effort

    efforts = {}
    for value in values or []:
        seat, sep, level = value.rpartition("=")
        seat = seat.strip() if sep else "*"
        where = f"--reasoning-effort {value}"
        efforts[seat or "*"] = check_reasoning_effort(level, where)
    return efforts


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
