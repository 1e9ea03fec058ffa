"""Who sits where: the seat map a run records, who speaks in a stage, and whether a panel fits
a protocol before anything runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from council.base.errors import ConfigError
from council.protocols.graph import Protocol
from council.records.run import SeatAssignment
from council.seats.seat import Seat


def seat_assignment(seat: Seat, anonymous_label: str | None = None) -> SeatAssignment:
    return SeatAssignment(
        seat=seat.name,
        persona=seat.persona.name,
        role=seat.role,
        provider=seat.model.provider,
        model=seat.model.model,
        card_path=str(seat.persona.path) if seat.persona.path is not None else None,
        card_hash=seat.persona.content_hash,
        anonymous_label=anonymous_label,
        reason=seat.reason or None,
        weight=seat.weight,
        method=seat.persona.fields.reasoning_method,
        reasoning_effort=seat.reasoning_effort,
    )


def select_seats(selector: Any, panel: Sequence[Seat], chair: Seat) -> list[Seat]:
    """Who speaks in a stage: the panel, the chair, half the panel, or panel positions."""
    half = (len(panel) + 1) // 2
    if selector == "chair":
        return [chair]
    if selector == "first_half":
        return list(panel[:half])
    if selector == "second_half":
        return list(panel[half:])
    if isinstance(selector, list):
        return [panel[position - 1] for position in selector]
    return list(panel)


def questioner_seats(protocol: Protocol, panel: Sequence[Seat]) -> list[str]:
    """The panel seats whose card is one of the protocol's ``questioners``: matched, without
    case, against the card's name, its name without a ``council-`` style prefix (nyk's
    ``council-socrates``), or its figure without dates."""
    wanted = {name.lower() for name in protocol.spec.questioners}
    found = []
    for seat in panel:
        name = seat.persona.name.lower()
        figure = re.sub(r"\s*\(.*?\)", "", seat.persona.fields.figure or "").strip().lower()
        if wanted & {name, name.split("-", 1)[-1], figure}:
            found.append(seat.name)
    return found


def check_panel_fits(protocol: Protocol, panel_size: int) -> None:
    """Refuse a panel the protocol cannot seat, before anything runs."""
    bounds = protocol.spec.panel
    if panel_size < bounds.min or (bounds.max is not None and panel_size > bounds.max):
        wanted = (
            f"{bounds.min}"
            if bounds.max == bounds.min
            else f"{bounds.min} to {bounds.max or 'any'}"
        )
        raise ConfigError(f"protocol '{protocol.name}' seats {wanted} personas; {panel_size} given")
    for stage in protocol.speaking_stages():
        if isinstance(stage.seats, list) and max(stage.seats) > panel_size:
            raise ConfigError(
                f"protocol '{protocol.name}' stage '{stage.id}' seats panel position "
                f"{max(stage.seats)}, but the panel has {panel_size} personas"
            )
        if stage.seats == "second_half" and panel_size < 2:
            raise ConfigError(f"protocol '{protocol.name}' needs two halves; 1 persona given")
