"""The Python API: a ``Council`` seats personas on models and convenes them on a question."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from council.engine.deliberation import (
    Deliberation,
    SamplingSettings,
    check_panel_fits,
    seat_assignment,
)
from council.engine.observer import Observer, Observers
from council.errors import ConfigError, UnknownNameError
from council.personas.card import PersonaCard
from council.personas.library import CHAIR, find_persona
from council.protocols.graph import Protocol
from council.protocols.library import find_protocol
from council.seats.local import DEFAULT_LOCAL_MODEL
from council.seats.model import ChatModel
from council.seats.routing import route
from council.seats.seat import CallSettings, Seat, SeatRole, make_model
from council.transcript.records import RunResult, SeatAssignment
from council.transcript.rundir import RunDirectory, new_run_id

DEFAULT_PANEL = ("popper", "kuhn", "meadows")
DEFAULT_PROTOCOL = "council"


class Council:
    """A panel of personas, each in a seat bound to a model, plus a chair outside the panel.

    ``model`` is the default for every seat (the bundled local model unless given); ``seats``
    overrides it per persona name, ``"chair"`` included. Values are litellm model strings or
    ``ChatModel`` objects such as the test doubles in ``council.testing``.
    """

    def __init__(
        self,
        personas: Sequence[str | PersonaCard] = DEFAULT_PANEL,
        *,
        protocol: str | Protocol = DEFAULT_PROTOCOL,
        model: str | ChatModel = DEFAULT_LOCAL_MODEL,
        seats: Mapping[str, str | ChatModel] | None = None,
        chair: str | PersonaCard = CHAIR,
        endpoints: Mapping[str, str] | None = None,
        runs_dir: Path | str | None = "runs",
        observers: Sequence[Observer] = (),
        sampling: SamplingSettings | None = None,
        calls: CallSettings | None = None,
        use_model_hints: bool = False,
        models: Sequence[str] = (),
        persona_dirs: Sequence[Path] = (),
    ) -> None:
        extra_dirs = list(persona_dirs)
        cards = [p if isinstance(p, PersonaCard) else find_persona(p, extra_dirs) for p in personas]
        if not cards:
            raise ConfigError("a council needs at least one persona")
        names = [card.name for card in cards]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"persona listed twice: {', '.join(duplicates)}")
        chair_card = chair if isinstance(chair, PersonaCard) else find_persona(chair, extra_dirs)
        if chair_card.name in names:
            raise ConfigError(f"the chair '{chair_card.name}' cannot also sit on the panel")

        overrides = dict(seats or {})
        unknown = set(overrides) - {*names, CHAIR}
        if unknown:
            raise UnknownNameError("seat", sorted(unknown)[0], [*names, CHAIR])

        # A pool of models: polarity pairs are seated on different model families.
        routed = {c.persona: c for c in route(cards, models)} if models else {}

        def bind(card: PersonaCard, seat_name: str, role: SeatRole) -> Seat:
            choice: str | ChatModel | None = overrides.get(seat_name)
            reason = "set for this seat"
            if choice is None and use_model_hints and card.fields.model:
                choice, reason = card.fields.model, "the card's model hint"
            if choice is None and seat_name in routed:
                choice, reason = routed[seat_name].model, "routed: " + routed[seat_name].reason
            if choice is None:
                choice, reason = model, "the council's default model"
            chosen = make_model(choice, endpoints=endpoints, settings=calls)
            return Seat(name=seat_name, persona=card, model=chosen, role=role, reason=reason)

        try:
            self.panel = [bind(card, card.name, "panel") for card in cards]
            self.chair = bind(chair_card, CHAIR, "chair")
        except ValueError as exc:  # a malformed model string
            raise ConfigError(str(exc)) from None
        self.protocol = protocol if isinstance(protocol, Protocol) else find_protocol(protocol)
        check_panel_fits(self.protocol, len(self.panel))
        self.runs_dir = Path(runs_dir).absolute() if runs_dir is not None else None
        self.observers = list(observers)
        self.sampling = sampling or SamplingSettings()

    def seat_map(self) -> list[SeatAssignment]:
        """Who sits where, on which model; calls no model and starts no server."""
        return [seat_assignment(seat) for seat in [*self.panel, self.chair]]

    async def aconvene(self, question: str) -> RunResult:
        """Deliberate on ``question``; returns the run, completed or failed, with every turn."""
        question = question.strip()
        if not question:
            raise ConfigError("the question is empty")
        run_id = new_run_id(question)
        observers = Observers(list(self.observers))
        deliberation = Deliberation(
            self.protocol,
            self.panel,
            self.chair,
            question,
            run_id=run_id,
            run_dir=str(self.runs_dir / run_id) if self.runs_dir is not None else None,
            observer=observers,
            sampling=self.sampling,
        )
        # The folder is made only once every template has rendered; it hears of each event
        # before anyone else, so what is reported is already on disk.
        if self.runs_dir is not None:
            observers.observers.insert(0, RunDirectory(self.runs_dir, run_id))
        return await deliberation.run()

    def convene(self, question: str) -> RunResult:
        """Synchronous ``aconvene``; inside a running event loop, await ``aconvene`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aconvene(question))
        raise ConfigError("convene() was called inside an event loop: use 'await aconvene()'")
