"""Resume a run that stopped, or replay one with a seat changed, from the ledger.

Both convene the recorded council again and answer every call whose inputs are identical to a
recorded, successful one from the ledger. Resume continues the same run (a crash, a kill, a
spent budget) and refuses if a card or the protocol changed since; replay starts a new run from
an old one, typically with one seat moved to another model, and pays only for what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.council import Council
from council.engine.budget import Budget
from council.engine.deliberation import SamplingSettings
from council.engine.observer import Observer
from council.errors import ConfigError, UnknownNameError
from council.ledger.store import Ledger
from council.personas.card import load_card
from council.protocols.graph import load_protocol_file
from council.seats.seat import CallSettings
from council.transcript.records import RunResult


def _recorded(run_id: str, runs_dir: Path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    ledger = Ledger.in_folder(runs_dir)
    try:
        row = ledger.run(run_id)
        if row is None:
            raise UnknownNameError("run", run_id, ledger.run_ids())
        return json.loads(row["config"]), json.loads(row["seats"]), dict(row)
    finally:
        ledger.close()


def recorded_council(
    run_id: str,
    runs_dir: Path | str = "runs",
    *,
    seats: Mapping[str, str] | None = None,
    observers: Sequence[Observer] = (),
    unchanged: bool = True,
) -> tuple[Council, dict[str, Any]]:
    """The council a run was convened with (``seats`` overrides some seats' models)."""
    runs_dir = Path(runs_dir)
    config, recorded_seats, row = _recorded(run_id, runs_dir)
    panel = [load_card(path) for path in config["personas"]]
    chair = load_card(config["chair"])
    protocol = load_protocol_file(config["protocol"])
    if unchanged:
        changed = [
            card.name
            for card, seat in [*((c, c.name) for c in panel), (chair, "chair")]
            if card.content_hash != recorded_seats[seat]["card_hash"]
        ]
        if protocol.content_hash != row["protocol_hash"]:
            changed.append(f"protocol {protocol.name}")
        if changed:
            raise ConfigError(
                f"run {run_id} cannot resume: {', '.join(changed)} changed since it started; "
                "'council replay' reruns it with the files as they are now"
            )
    chains: dict[str, list[str]] = {}
    for seat, spec in config["seats"].items():
        if not spec:
            raise ConfigError(f"seat '{seat}' ran on a model object, not a model string: "
                              "rebuild that council in Python to rerun it")  # fmt: skip
        chains[seat] = list(spec)
    for seat, model in (seats or {}).items():
        if seat not in chains:
            raise UnknownNameError("seat", seat, chains)
        chains[seat] = [model]
    council = Council(
        panel,
        protocol=protocol,
        chair=chair,
        seats={seat: chain[0] for seat, chain in chains.items()},
        fallbacks={seat: chain[1:] for seat, chain in chains.items() if len(chain) > 1},
        endpoints=config["endpoints"],
        runs_dir=runs_dir,
        observers=observers,
        sampling=SamplingSettings(**config["sampling"]),
        calls=CallSettings(**config["calls"]),
        budget=Budget(**config["budget"]) if config["budget"] else None,
    )
    return council, {**row, "label_seed": config["label_seed"]}


def resume(
    run_id: str, runs_dir: Path | str = "runs", *, observers: Sequence[Observer] = ()
) -> RunResult:
    """Continue a stopped run; no call that already completed is made again."""
    council, row = recorded_council(run_id, runs_dir, observers=observers)
    if row["status"] == "completed":
        raise ConfigError(f"run {run_id} already completed; 'council replay' reruns it")
    return council.convene(
        row["question"], run_id=run_id, reuse_from=[run_id], label_seed=row["label_seed"]
    )


def replay(
    run_id: str,
    runs_dir: Path | str = "runs",
    *,
    seats: Mapping[str, str] | None = None,
    observers: Sequence[Observer] = (),
) -> RunResult:
    """A new run of an old one, with ``seats`` changed; identical calls are reused."""
    council, row = recorded_council(
        run_id, runs_dir, seats=seats, observers=observers, unchanged=False
    )
    return council.convene(row["question"], reuse_from=[run_id], label_seed=row["label_seed"])
