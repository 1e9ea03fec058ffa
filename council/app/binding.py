"""Binding a council's seats: which model each seat sits on and why (an override, the card's
hint, routing with the card's tier, the chair's rule, or the default), its fallbacks, what a
seat-slot file sets, and reasoning efforts as seat -> level."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from council.personas.card import PersonaCard
from council.personas.library import CHAIR, available_personas
from council.records.spec import ALL_SEATS
from council.seats.fallback import FallbackModel
from council.seats.model import ChatModel
from council.seats.routing import chair_fallback, chair_model
from council.seats.seat import Seat, SeatRole, check_reasoning_effort
from council.seats.slots import SeatSlots

ModelChoice = str | ChatModel


@dataclasses.dataclass
class SeatBinder:
    """Which model each seat sits on, and why: an override, the card's hint, routing (with
    the card's tier), the chair's rule, or the council's default; then its fallbacks."""

    overrides: dict[str, ModelChoice]
    chains: dict[str, list[str]]
    default: ModelChoice
    use_hints: bool
    pool: list[str]
    tiers: Mapping[str, Mapping[str, str]]
    weights: Mapping[str, float]
    routed: dict[str, Any]
    make: Any  # model choice -> ChatModel
    chair_fallback: bool = True  # a chair with no fallbacks given falls back to another family
    specs: dict[str, list[str] | None] = dataclasses.field(default_factory=dict)

    def _choice(
        self, card: PersonaCard, seat_name: str, role: SeatRole, panel: list[Seat]
    ) -> tuple[ModelChoice, str]:
        if seat_name in self.overrides:
            return self.overrides[seat_name], "set for this seat"
        if self.use_hints and card.fields.model:
            return card.fields.model, "the card's model hint"
        if seat_name in self.routed:
            routed = self.routed[seat_name]
            tiered = self.tiers.get(routed.model.split("/")[0], {}).get(card.fields.tier or "")
            if tiered:
                return tiered, f"routed: {routed.reason}; its {card.fields.tier} tier model"
            return routed.model, "routed: " + routed.reason
        if role == "chair" and self.pool:
            picked = chair_model(self.pool, [seat.model.model for seat in panel])
            if picked is not None:
                return picked
        return self.default, "the council's default model"

    def bind(self, card: PersonaCard, seat_name: str, role: SeatRole, panel: list[Seat]) -> Seat:
        choice, reason = self._choice(card, seat_name, role, panel)
        chain = [choice, *self.chains.get(seat_name, self._chair_fallback(role, choice, panel))]
        bound = [self.make(c) for c in chain]
        if len(bound) > 1:
            reason += f"; falls back to {', '.join(m.model for m in bound[1:])}"
        self.specs[seat_name] = [c for c in chain if isinstance(c, str)] or None
        return Seat(
            name=seat_name,
            persona=card,
            role=role,
            reason=reason,
            model=bound[0] if len(bound) == 1 else FallbackModel(bound),
            weight=self.weights.get(seat_name, 1.0),
        )

    def _chair_fallback(self, role: SeatRole, choice: ModelChoice, panel: list[Seat]) -> list[str]:
        """By default a chair falls back to a model of another family from the pool (nyk's
        STEP 7 fallback; after it, the engine's verdict from the tally)."""
        if (
            role != "chair"
            or not self.chair_fallback
            or not self.pool
            or not isinstance(choice, str)
        ):
            return []
        other = chair_fallback(self.pool, choice, [seat.model.model for seat in panel])
        return [other] if other else []


def apply_slots(
    slots: SeatSlots,
    names: list[str],
    overrides: dict[str, Any],
    chains: dict[str, list[str]],
    persona_dirs: list[Path] | None = None,
) -> None:
    """A seat-slot file's members onto this panel's seats (flags already set win); a member
    naming no card on the search path (``persona_dirs`` first) is refused."""
    slots.check_members(names, available_personas(persona_dirs))
    for member, model in slots.seats.items():
        seat = slots.seat_for(member, names)
        if seat is not None:
            overrides.setdefault(seat, model)
    if slots.chairman:
        overrides.setdefault(CHAIR, slots.chairman)
    if slots.fallback:
        for seat in [*names, CHAIR]:
            chains.setdefault(seat, [slots.fallback])


def efforts(given: str | Mapping[str, str] | None) -> dict[str, str]:
    """Reasoning efforts as seat -> level (``ALL_SEATS`` for every seat), each level checked."""
    if given is None:
        return {}
    mapping = {ALL_SEATS: given} if isinstance(given, str) else dict(given)
    where = {seat: f"reasoning effort for '{seat}'" for seat in mapping}
    where[ALL_SEATS] = "reasoning effort"
    return {seat: check_reasoning_effort(v, where[seat]) for seat, v in mapping.items()}
