"""Resume a run that stopped, or replay one with a seat changed, from the ledger.

Both convene the recorded council again and answer every call whose inputs are identical to a
recorded, successful one from the ledger. Resume continues the same run (a crash, a kill, a
spent budget) with the cards and protocol exactly as they ran, recorded in the run's
configuration; it refuses a run that a live process is still running. Replay starts a new run
from an old one, with the files as they are now (falling back to the recorded text for a card
built in code or since deleted), typically with one seat moved to another model, and pays
only for what changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from council.app.council import Council
from council.base.errors import ConfigError, RunInProgress, UnknownNameError
from council.base.runs_home import RUNS_HOME, RunsHome, runs_location
from council.base.secrets import REDACTED
from council.personas.card import PersonaCard, load_card, parse_card
from council.protocols.graph import Protocol, compile_protocol, load_protocol_file
from council.records.events import EventSink, RunStarted
from council.records.run import RunHeader, RunResult
from council.records.settings import CallSettings, RecordedCard, RunConfig
from council.store.lease import is_live
from council.store.ledger import Ledger
from council.store.loader import resolve_run_id


def _recorded_run(run_id: str, runs_dir: Path) -> tuple[str, RunHeader, RunConfig, str]:
    """(full run ID, header, configuration, status) of a recorded run."""
    ledger = Ledger.existing(runs_dir)
    try:
        run_id = resolve_run_id(ledger, run_id)
        events = ledger.events(run_id)
        status = (ledger.run(run_id) or {}).get("status", "running")
    finally:
        ledger.close()
    start = next((e for e in events if isinstance(e, RunStarted)), None)
    if start is None:
        raise ConfigError(f"run {run_id} has no recorded start")
    if start.config is None:
        raise ConfigError(
            f"run {run_id} has no recorded configuration (a seat ran on a model object, or its "
            "files were gone when the ledger was upgraded): rebuild that council in Python"
        )
    return run_id, start.header, start.config, str(status)


def _card(recorded: RecordedCard, *, as_now: bool) -> PersonaCard:
    if as_now and recorded.path and Path(recorded.path).is_file():
        return load_card(recorded.path)
    return parse_card(recorded.text, Path(recorded.path or f"<card '{recorded.name}'>"))


def _protocol(config: RunConfig, *, as_now: bool) -> Protocol:
    path = config.protocol_path
    if as_now and path and Path(path).is_file():
        return load_protocol_file(path)
    return compile_protocol(config.protocol_text, Path(path or "<protocol>"))


@dataclass(frozen=True)
class SeatChanges:
    """What a replay changes about who sits where, as ``Council`` takes it. A new default
    ``model``, a ``models`` pool, seat slots or model hints re-seat the council as convene
    would; without them every seat keeps its recorded model and fallbacks, save those named
    in ``seats`` and ``fallbacks``."""

    seats: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    models: Sequence[str] = ()
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    seat_slots: str | None = None  # a seat-slot YAML file
    tiers: Mapping[str, Mapping[str, str]] | None = None
    use_model_hints: bool = False
    calls: CallSettings | None = None
    # seat -> reasoning effort ("*": every seat), over the recorded ones.
    reasoning_effort: Mapping[str, str] = field(default_factory=dict)

    @property
    def reseats(self) -> bool:
        return bool(self.model or self.models or self.seat_slots or self.use_model_hints)


def _changed_seats(
    config: RunConfig, changes: SeatChanges
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(seat -> model, seat -> fallbacks): as recorded (unless re-seated), then as changed."""
    recorded: dict[str, list[str]] = {}
    for seat, spec in config.seats.items():
        if not spec:
            raise ConfigError(
                f"seat '{seat}' ran on a model object, not a model string: "
                "rebuild that council in Python to rerun it"
            )
        recorded[seat] = spec
    for seat in {*changes.seats, *changes.fallbacks} - set(recorded):
        raise UnknownNameError("seat", seat, recorded)
    if changes.reseats:
        recorded = {}
    seats = {seat: spec[0] for seat, spec in recorded.items()} | dict(changes.seats)
    fallbacks = {seat: list(spec[1:]) for seat, spec in recorded.items() if len(spec) > 1}
    return seats, fallbacks | {seat: list(chain) for seat, chain in changes.fallbacks.items()}


def recorded_council(
    config: RunConfig,
    runs_dir: Path | str,
    *,
    changes: SeatChanges | None = None,
    sinks: Sequence[EventSink] = (),
    as_now: bool = False,
    endpoints: Mapping[str, str] | None = None,
) -> Council:
    """The council a run was convened with, its seats changed by ``changes``; ``as_now``
    reads cards and protocol from their files as they are today."""
    changes = changes or SeatChanges()
    seats, fallbacks = _changed_seats(config, changes)
    urls = {**config.endpoints, **(endpoints or {})}
    for model, url in urls.items():
        if REDACTED in url:
            raise ConfigError(
                f"the endpoint of {model} had credentials, which are never stored: give it "
                f"again with --endpoint {model}=URL (endpoints={{...}} in Python)"
            )
    spec = config.spec.model_copy(
        update={
            "panel": None,
            "chairman": None,
            "model": changes.model,
            "seats": seats,
            "fallbacks": fallbacks,
            "models": list(changes.models),
            "seat_slots": changes.seat_slots,
            "tiers": dict(changes.tiers or {}),
            "use_model_hints": changes.use_model_hints,
            "endpoints": urls,
            "calls": changes.calls or config.calls,
            # The weights the run was convened with, its domain seat's among them; the panel
            # was checked then, and is not chosen again.
            "panel_rules": False,
            "reasoning_effort": _efforts(config, changes),
        }
    )
    return Council.from_spec(
        spec,
        cards=[_card(card, as_now=as_now) for card in config.panel],
        chair=_card(config.chair, as_now=as_now),
        protocol=_protocol(config, as_now=as_now),
        runs_dir=runs_dir,
        sinks=sinks,
    )


def _efforts(config: RunConfig, changes: SeatChanges) -> dict[str, str]:
    """The recorded reasoning efforts with the replay's changes; one given for every seat
    ("*") replaces every recorded one."""
    kept = {} if "*" in changes.reasoning_effort else config.reasoning_effort
    return {**kept, **changes.reasoning_effort}


def resume(
    run_id: str,
    runs_dir: Path | str | RunsHome = RUNS_HOME,
    *,
    sinks: Sequence[EventSink] = (),
    endpoints: Mapping[str, str] | None = None,
) -> RunResult:
    """Continue a stopped run; no call that already completed is made again."""
    runs_dir = runs_location(runs_dir)
    run_id, header, config, status = _recorded_run(run_id, runs_dir)
    if status == "completed":
        raise ConfigError(f"run {run_id} already completed; 'council replay' reruns it")
    if is_live(runs_dir, run_id):
        # The lease is taken again inside convene; this earlier check names the problem
        # before any card is parsed or model started.
        raise RunInProgress(f"run {run_id} is still running in another process: wait for it")
    council = recorded_council(config, runs_dir, sinks=sinks, endpoints=endpoints)
    return council.convene(
        header.question,
        run_id=run_id,
        reuse_from=[run_id],
        label_seed=config.label_seed,
        follow_up=header.follow_up_link,  # a follow-up goes on with the digests it was shown
    )


def replay(
    run_id: str,
    runs_dir: Path | str | RunsHome = RUNS_HOME,
    *,
    seats: Mapping[str, str] | None = None,
    changes: SeatChanges | None = None,
    sinks: Sequence[EventSink] = (),
    endpoints: Mapping[str, str] | None = None,
) -> RunResult:
    """A new run of an old one with its seats changed (``seats`` for a few seats' models,
    ``changes`` for anything convene can set); identical calls are reused."""
    runs_dir = runs_location(runs_dir)
    run_id, header, config, _ = _recorded_run(run_id, runs_dir)
    changes = changes or SeatChanges()
    if seats:
        changes = dataclasses.replace(changes, seats={**changes.seats, **seats})
    council = recorded_council(
        config, runs_dir, changes=changes, sinks=sinks, as_now=True, endpoints=endpoints
    )
    return council.convene(
        header.question,
        reuse_from=[run_id],
        label_seed=config.label_seed,
        follow_up=header.follow_up_link,  # a follow-up's replay follows the same parent
    )
