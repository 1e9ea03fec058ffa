"""The Python API: a ``Council`` seats personas on models and convenes them on a question."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from council.app.binding import ModelChoice, SeatBinder, apply_slots
from council.app.binding import efforts as binding_efforts
from council.app.choosing import bundled_vectors, embedding_similarity, seat_by_domain
from council.app.grounding import grounding_for
from council.app.independence import independence_estimator
from council.app.probe import EmbeddingProbe, default_probe
from council.base.errors import ConfigError, UnknownNameError
from council.base.runs_home import RUNS_HOME, RunsHome, runs_location
from council.base.secrets import redact
from council.engine.deliberation import Deliberation
from council.engine.seating import check_panel_fits, seat_assignment
from council.meter.embedders import Embedder
from council.personas.card import PersonaCard
from council.personas.domain import WEIGHT
from council.personas.library import CHAIR, find_persona
from council.personas.lint import check_resolved
from council.personas.panels import check_methods
from council.protocols.graph import Protocol
from council.protocols.library import find_protocol
from council.records.events import EventSink
from council.records.run import FollowUp, RunResult, SeatAssignment
from council.records.settings import (
    Budget,
    CallSettings,
    CouncilSpec,
    RecordedCard,
    RunConfig,
    SamplingSettings,
)
from council.records.spec import ALL_SEATS, DEFAULT_PANEL
from council.seats.local import DEFAULT_LOCAL_MODEL
from council.seats.model import ChatModel
from council.seats.preflight import absent_seats
from council.seats.reusing import ReusingModel
from council.seats.routing import route
from council.seats.seat import Seat, make_model
from council.seats.slots import SeatSlots, read_seat_slots
from council.store.folder import RunFolder, new_run_id
from council.store.lease import RunLease
from council.store.ledger import Ledger
from council.store.panels import record_run
from council.store.recorder import RunRecorder
from council.text.documents import read_context
from council.text.templates import start_render_worker

_DEFAULTS = CouncilSpec()
DEFAULT_PROTOCOL = _DEFAULTS.protocol
__all__ = ["DEFAULT_PANEL", "DEFAULT_PROTOCOL", "Council"]
_NOTE = "domain seat: "  # how choice_notes name the domain seat's line


class Council:
    """A panel of personas, each in a seat bound to a model, plus a chair outside the panel.

    ``model`` is the default for every seat (the bundled local model unless given); ``seats``
    overrides it per persona name, ``"chair"`` included; ``models`` is a pool from which
    polarity pairs are seated on different model families; ``fallbacks`` gives a seat models to
    try, in order, when its own fails for good. Values are litellm model strings or
    ``ChatModel`` objects such as the test doubles in ``council.testing``. Every run is
    recorded in ``runs_dir/ledger.sqlite`` and exported to a folder there; ``runs_dir``
    defaults to the runs home shared by every working directory (``$COUNCIL_RUNS``, else
    ``~/.local/share/council/runs``), and ``runs_dir=None`` stores nothing. ``sinks`` follow
    each run's events as they are recorded (a progress display, a stream). ``embedder`` is
    what guards that watch a stage's diversity or drift measure with, and what ranks passages
    of ``context``: documents (files, folders, globs) seats read as evidence and cite.

    ``panel_rules`` holds nyk's panel rules: no two seats share a reasoning method, and one
    seat, the member whose domain the question is most plainly about, votes with weight 1.5
    (chosen for ``question`` here, or when convened for the question convened on; none on a
    duo, none when ``weights`` are given, none when no member clearly stands out). An
    experiment that compares panels turns them off to keep its arms on equal terms.

    ``Council.from_spec`` builds one from a ``CouncilSpec``, the one description of a council
    every interface reads; these parameters are the spec's fields, plus what only Python can
    hand over (cards, protocols and models as objects, sinks, an embedder).
    """

    def __init__(
        self,
        personas: Sequence[str | Path | PersonaCard] = DEFAULT_PANEL,
        *,
        protocol: str | Protocol = DEFAULT_PROTOCOL,
        model: ModelChoice = DEFAULT_LOCAL_MODEL,
        seats: Mapping[str, ModelChoice] | None = None,
        chair: str | PersonaCard = CHAIR,
        endpoints: Mapping[str, str] | None = None,
        runs_dir: Path | str | RunsHome | None = RUNS_HOME,
        sinks: Sequence[EventSink] = (),
        sampling: SamplingSettings | None = None,
        calls: CallSettings | None = None,
        budget: Budget | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        use_model_hints: bool = False,
        models: Sequence[str] = (),
        persona_dirs: Sequence[Path] = (),
        panel: str | None = None,
        weights: Mapping[str, float] | None = None,
        api_key_envs: Mapping[str, str] | None = None,
        seat_slots: SeatSlots | None = None,
        tiers: Mapping[str, Mapping[str, str]] | None = None,
        similarity: Literal["embedding", "words"] = _DEFAULTS.similarity,
        embedder: Embedder | None = None,
        switches: Mapping[str, bool] | None = None,
        question: str | None = None,
        panel_rules: bool = _DEFAULTS.panel_rules,
        reasoning_effort: str | Mapping[str, str] | None = None,
        allow_absent: bool = _DEFAULTS.allow_absent,
        context: Sequence[str | Path] = (),
        context_tools: str = _DEFAULTS.context_tools,
    ) -> None:
        start_render_worker()  # it starts while the cards load; the first prompt finds it up
        cards, chair_card, self.choice_notes = _resolve_cards(
            personas, chair, panel, list(persona_dirs)
        )
        self._panel_rules = panel_rules
        if panel_rules:
            check_methods(cards)
        self.protocol = protocol if isinstance(protocol, Protocol) else find_protocol(protocol)
        # How gates and free-stance votes compare texts: the bundled embedder (loaded only if
        # a run needs it), or word overlap, which needs nothing and is deterministic.
        self.similarity = similarity
        self._weights = dict(weights or {})
        self._by_domain = panel_rules and not weights and self.protocol.spec.panel.max != 2
        names = [card.name for card in cards]
        overrides = dict(seats or {})
        chains = {seat: list(chain) for seat, chain in (fallbacks or {}).items()}
        for unknown in sorted((set(overrides) | set(chains)) - {*names, CHAIR}):
            raise UnknownNameError("seat", unknown, [*names, CHAIR])
        self.endpoints = dict(endpoints or {})
        self.api_key_envs = dict(api_key_envs or {})
        efforts = binding_efforts(reasoning_effort)
        for unknown in sorted(set(efforts) - {*names, CHAIR, ALL_SEATS}):
            raise UnknownNameError("seat", unknown, [*names, CHAIR])
        if seat_slots is not None:
            apply_slots(seat_slots, names, overrides, chains, list(persona_dirs))
            for member, effort in seat_slots.reasoning_efforts.items():
                seat = CHAIR if member == CHAIR else seat_slots.seat_for(member, names)
                if seat is not None:
                    efforts.setdefault(seat, effort)
            self.endpoints |= seat_slots.endpoints
            self.api_key_envs |= seat_slots.api_key_envs
        self.calls = calls or _DEFAULTS.calls
        self._default_model = model if isinstance(model, str) else None
        binder = SeatBinder(
            overrides=overrides,
            chains=chains,
            default=model,
            use_hints=use_model_hints,
            pool=list(models),
            tiers=tiers or {},
            weights=self._weights,
            chair_fallback=self.calls.chair_fallback,
            # A pool of models: polarity pairs are seated on different model families, and
            # the chair on a family none of them is on, where the pool has one.
            routed={c.persona: c for c in route(cards, models)} if models else {},
            make=lambda choice: make_model(
                choice,
                endpoints=self.endpoints,
                settings=self.calls,
                api_key_envs=self.api_key_envs,
            ),
        )
        try:
            self.panel = [binder.bind(card, card.name, "panel", []) for card in cards]
            self.chair = binder.bind(chair_card, CHAIR, "chair", self.panel)
        except ValueError as exc:  # a malformed model string
            raise ConfigError(str(exc)) from None
        self._specs = binder.specs  # seat -> model strings, for resume
        self._bind_efforts(efforts)
        self.protocol = protocol if isinstance(protocol, Protocol) else find_protocol(protocol)
        check_panel_fits(self.protocol, len(self.panel))
        # Parts of the protocol turned on or off for its runs; an unknown switch, or a locked
        # one turned off (nyk's quick-mode anonymization), is refused here, before any call.
        self.switches = self.protocol.switch_settings(switches)
        self._domain_locked = question is not None
        if question is not None:  # locked now, with the panel, before any position exists
            self.panel, note = self._domain_seated(question)
            self.choice_notes.append(note)
        self.runs_dir = runs_location(runs_dir).absolute() if runs_dir is not None else None
        self.sinks = list(sinks)
        self.sampling = sampling or _DEFAULTS.sampling
        self.budget = budget or _DEFAULTS.budget
        # What guards that watch a stage measure diversity and drift with (the bundled
        # embedder, loaded only when one measures, unless another is given).
        self.embedder = embedder
        # Seats that fail the pre-flight sit out (recorded absent) instead of failing the run.
        self.allow_absent = allow_absent
        # Documents as evidence, read (and refused) now, before any call: D1.. in order.
        self.context = [str(path) for path in context]
        self.documents = read_context(self.context)
        self.context_tools = context_tools  # auto | on | off (CouncilSpec.context_tools)

    def _bind_efforts(self, efforts: Mapping[str, str]) -> None:
        """Each seat's reasoning effort: its own, else the one given for every seat."""

        def bound(seat: Seat) -> Seat:
            effort = efforts.get(seat.name, efforts.get(ALL_SEATS))
            return dataclasses.replace(seat, reasoning_effort=effort) if effort else seat

        self.panel = [bound(seat) for seat in self.panel]
        self.chair = bound(self.chair)

    @property
    def reasoning_efforts(self) -> dict[str, str]:
        """seat -> the reasoning effort it was given (seats left at the default absent)."""
        return {s.name: s.reasoning_effort for s in [*self.panel, self.chair] if s.reasoning_effort}

    @classmethod
    def for_question(cls, question: str, *, panel: str | None = None, **kwargs: Any) -> Council:
        """A council whose panel is chosen for ``question``: ``panel="auto"`` matches it to the
        panels by embedding; a duo protocol with no personas named seats the pair the duo
        tables give it; the domain seat is locked for it. ``choice_notes`` says what was
        chosen and why."""
        from council.app.choosing import choose

        if panel is not None and kwargs.get("personas"):
            raise ConfigError("give personas or a panel, not both")
        protocol = kwargs.get("protocol", DEFAULT_PROTOCOL)
        found = protocol if isinstance(protocol, Protocol) else find_protocol(protocol)
        duo = "personas" not in kwargs and found.spec.panel.max == 2
        choice = choose(question, panel, duo=duo)
        if choice is None:
            return cls(question=question, **kwargs)
        kwargs.pop("personas", None)
        council = cls(choice.personas, question=question, **kwargs)
        council.choice_notes[:0] = choice.why
        return council

    @classmethod
    def from_spec(
        cls,
        spec: CouncilSpec,
        *,
        question: str | None = None,
        runs_dir: Path | str | RunsHome | None = RUNS_HOME,
        sinks: Sequence[EventSink] = (),
        embedder: Embedder | None = None,
        cards: Sequence[str | Path | PersonaCard] | None = None,
        chair: PersonaCard | None = None,
        protocol: Protocol | None = None,
        doubles: Mapping[str, ChatModel] | None = None,
    ) -> Council:
        """The council ``spec`` describes. With ``question``, its panel is chosen for it as
        ``for_question`` does. ``cards``, ``chair`` and ``protocol`` stand in for the spec's
        names (cards as they were recorded, say); ``doubles`` maps model names to models such
        as the test doubles in ``council.testing``."""
        kwargs = _spec_arguments(spec, doubles or {})
        if cards is not None:
            kwargs["personas"] = list(cards)
        if chair is not None:
            kwargs["chair"] = chair
        if protocol is not None:
            kwargs["protocol"] = protocol
        kwargs |= {"runs_dir": runs_dir, "sinks": sinks, "embedder": embedder}
        if question is None:
            return cls(**kwargs)
        return cls.for_question(question, panel=kwargs.pop("panel"), **kwargs)

    def _domain_seated(self, question: str) -> tuple[list[Seat], str]:
        """The panel with its domain seat weighing 1.5 for ``question``, and a note saying
        which seat and why (or why none)."""
        if self._weights:
            return self.panel, _NOTE + "none - the caller's weights decide"
        if not self._by_domain:
            why = "a duo has no tie to break" if self.protocol.spec.panel.max == 2 else "off"
            return self.panel, f"{_NOTE}none - {why}"
        embedding = self.similarity == "embedding"
        cards = [seat.persona for seat in self.panel]
        encode = bundled_vectors() if embedding else None  # members' domains embedded once
        found = seat_by_domain(question, cards, embedding=embedding, encode=encode)
        panel = [
            dataclasses.replace(seat, weight=WEIGHT, reason=f"{seat.reason}; domain seat {WEIGHT}x")
            if seat.name == found.member
            else seat
            for seat in self.panel
        ]
        return panel, _NOTE + found.note

    def seat_map(self) -> list[SeatAssignment]:
        """Who sits where, on which model; calls no model and starts no server."""
        return [seat_assignment(seat) for seat in [*self.panel, self.chair]]

    def config(self, label_seed: str, panel: Sequence[Seat] | None = None) -> RunConfig:
        """What it takes to convene this council again (``council resume``, ``replay``);
        ``panel`` is the seating a run used, its domain seat's weight included."""
        return RunConfig(
            spec=self.resolved_spec(panel),
            panel=[_recorded(seat.persona) for seat in self.panel],
            chair=_recorded(self.chair.persona),
            protocol_path=str(self.protocol.path),
            protocol_text=self.protocol.text,
            seats=self._specs,
            label_seed=label_seed,
        )

    def resolved_spec(self, panel: Sequence[Seat] | None = None) -> CouncilSpec:
        """The spec of this council as seated: each seat's model chain, the weights (its
        domain seat's, from ``panel``, the seating a run used) and efforts as they are."""
        chains = {seat: chain for seat, chain in self._specs.items() if chain}
        return CouncilSpec.model_validate(
            {
                "personas": [seat.persona.name for seat in self.panel],
                "chair": self.chair.persona.name,
                "protocol": self.protocol.name,
                "switches": self.switches,
                "panel_rules": self._panel_rules,
                "weights": {s.name: s.weight for s in panel or self.panel if s.weight != 1.0},
                "model": self._default_model,
                "seats": {seat: chain[0] for seat, chain in chains.items()},
                "fallbacks": {seat: chain[1:] for seat, chain in chains.items() if chain[1:]},
                # Credentials in a URL (http://user:KEY@host) are never stored; resume asks again.
                "endpoints": {model: redact(url) for model, url in self.endpoints.items()},
                "api_key_envs": self.api_key_envs,
                "reasoning_effort": self.reasoning_efforts,
                "similarity": self.similarity,
                "sampling": self.sampling,
                "calls": self.calls,
                "budget": self.budget,
                "allow_absent": self.allow_absent,
                "context": self.context,
                "context_tools": self.context_tools,
            }
        )

    async def aconvene(
        self,
        question: str,
        *,
        run_id: str | None = None,
        reuse_from: Sequence[str] = (),
        label_seed: str | None = None,
        follow_up: FollowUp | None = None,
    ) -> RunResult:
        """Deliberate on ``question``; returns the run, completed or failed, with every turn.

        ``reuse_from`` names earlier runs in the ledger whose identical calls are answered from
        the record instead of the model (how resume and replay avoid paying twice); ``run_id``
        continues an existing run; ``label_seed`` keeps another run's anonymous labels;
        ``follow_up`` makes the run a follow-up of an earlier one (``council.app.follow_up``).
        """
        question = question.strip()
        if not question:
            raise ConfigError("the question is empty")
        resuming = run_id is not None
        # Every seat's model checked before anything is recorded or spent; not for a resume or
        # replay, whose calls the record may answer in full (one it cannot fails unretried).
        absent = (
            {}
            if reuse_from
            else await absent_seats([*self.panel, self.chair], allow_absent=self.allow_absent)
        )
        run_id = run_id or new_run_id(question)
        ledger = Ledger.in_folder(self.runs_dir) if self.runs_dir else None
        lease = RunLease(self.runs_dir, run_id) if self.runs_dir else None
        try:
            if lease is not None and ledger is not None:
                lease.acquire()  # a run resumed twice at once would make every call twice
                ledger.reserve()
            return await self._deliberate(
                question, run_id, ledger, reuse_from, label_seed, resuming, absent, follow_up
            )
        finally:
            if lease is not None:
                lease.release()
            if ledger is not None:
                ledger.close()

    async def _deliberate(
        self,
        question: str,
        run_id: str,
        ledger: Ledger | None,
        reuse_from: Sequence[str],
        label_seed: str | None,
        resuming: bool,
        absent: Mapping[str, str],
        follow_up: FollowUp | None = None,
    ) -> RunResult:
        panel, chair = self.panel, self.chair
        if not self._domain_locked:  # chosen for this question before any seat speaks
            panel, note = self._domain_seated(question)
            self.choice_notes = [*(n for n in self.choice_notes if not n.startswith(_NOTE)), note]
        if reuse_from:
            if ledger is None or self.runs_dir is None:
                raise ConfigError("reusing earlier answers needs a runs folder with a ledger")
            panel = [_reusing(seat, ledger, reuse_from) for seat in panel]
            chair = _reusing(chair, ledger, reuse_from)
        folder = [RunFolder(self.runs_dir / run_id)] if self.runs_dir is not None else []
        recorder = RunRecorder(ledger, followers=[*folder, *self.sinks])
        deliberation = Deliberation(
            self.protocol,
            panel,
            chair,
            question,
            run_id=run_id,
            run_dir=str(self.runs_dir / run_id) if self.runs_dir is not None else None,
            sink=recorder,
            sampling=self.sampling,
            budget=self.budget,
            label_seed=label_seed,
            config=self.config(label_seed or run_id, panel),
            resumed=resuming,
            calls=self.calls,
            similarity=embedding_similarity() if self.similarity == "embedding" else None,
            probe=EmbeddingProbe(self.embedder) if self.embedder else default_probe(),
            switches=self.switches,
            choice_notes=self.choice_notes,
            absent=absent,
            independence=independence_estimator(self.runs_dir, [*panel, chair]),
            grounding=grounding_for(
                self.documents, self.similarity, self.embedder, self.context_tools
            ),
            follow_up=follow_up,
        )
        try:
            result = await deliberation.run()
        finally:
            recorder.close()  # what an interrupted run left queued, onto the record
        if recorder.failure is not None:  # the ledger holds every turn it could keep
            raise recorder.failure
        if self.runs_dir is not None:  # the next run of this panel reads these stances
            record_run(self.runs_dir, result)
        return result

    def convene(self, question: str, **kwargs: Any) -> RunResult:
        """Synchronous ``aconvene``; inside a running event loop, await ``aconvene`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            ran: list[RunResult] = []

            async def run() -> None:
                # Its task returns nothing: asyncio.run formats its main task on the way out
                # (checking its Ctrl-C handler), result included: a run's whole record was
                # printed twice and thrown away, milliseconds a run.
                ran.append(await self.aconvene(question, **kwargs))

            asyncio.run(run())
            return ran[0]
        raise ConfigError("convene() was called inside an event loop: use 'await aconvene()'")


def _resolve_cards(
    personas: Sequence[str | Path | PersonaCard],
    chair: str | PersonaCard,
    panel: str | None,
    dirs: list[Path],
) -> tuple[list[PersonaCard], PersonaCard, list[str]]:
    """The panel's cards (a named panel's, when given), the chair's, and notes."""
    notes: list[str] = []
    if panel is not None:  # a named panel; for "auto" use Council.for_question
        from council.app.choosing import choose

        choice = choose("", panel)
        assert choice is not None
        personas, notes = choice.personas, choice.why
    cards = [p if isinstance(p, PersonaCard) else find_persona(str(p), dirs) for p in personas]
    for card in cards:
        check_resolved(card)  # a scaffold's TODOs would reach the model as its identity
    if not cards:
        raise ConfigError("a council needs at least one persona")
    names = [card.name for card in cards]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"persona listed twice: {', '.join(duplicates)}")
    chair_card = chair if isinstance(chair, PersonaCard) else find_persona(chair, dirs)
    if chair_card.name in names:
        raise ConfigError(f"the chair '{chair_card.name}' cannot also sit on the panel")
    return cards, chair_card, notes


def _spec_arguments(spec: CouncilSpec, doubles: Mapping[str, ChatModel]) -> dict[str, Any]:
    """``Council``'s arguments for a spec; a model name ``doubles`` holds is that model."""

    def model(name: str) -> ModelChoice:
        return doubles.get(name, name)

    seats = {seat: model(name) for seat, name in spec.seats.items()}
    if spec.chairman:
        seats.setdefault(CHAIR, model(spec.chairman))
    kwargs: dict[str, Any] = dict(
        protocol=spec.protocol,
        model=model(spec.model or DEFAULT_LOCAL_MODEL),
        seats=seats,
        chair=spec.chair,
        endpoints=spec.endpoints,
        sampling=spec.sampling,
        calls=spec.calls,
        budget=spec.budget,
        fallbacks=spec.fallbacks,
        use_model_hints=spec.use_model_hints,
        models=spec.models,
        persona_dirs=[Path(folder) for folder in spec.persona_dirs],
        panel=spec.panel,
        weights=spec.weights,
        api_key_envs=spec.api_key_envs,
        seat_slots=read_seat_slots(spec.seat_slots) if spec.seat_slots else None,
        tiers=spec.tiers,
        similarity=spec.similarity,
        switches=spec.switches,
        panel_rules=spec.panel_rules,
        reasoning_effort=dict(spec.reasoning_effort),
        allow_absent=spec.allow_absent,
        context=spec.context,
        context_tools=spec.context_tools,
    )
    if spec.personas is not None:  # unset: the default panel, or the pair a duo seats
        kwargs["personas"] = spec.personas
    return kwargs


def _recorded(card: PersonaCard) -> RecordedCard:
    path = str(card.path) if card.path is not None else None
    return RecordedCard(name=card.name, path=path, text=card.text)


def _reusing(seat: Seat, ledger: Ledger, runs: Sequence[str]) -> Seat:
    return dataclasses.replace(
        seat, model=ReusingModel(seat.model, lambda hashed: ledger.answered(hashed, runs))
    )
