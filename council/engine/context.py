"""What a seat reads in a stage: the turns of the stages it may see, labelled and anonymized.

A seat only ever sees what the protocol graph's edges allow. Under anonymization every other
panel seat is shown as "Member X" with one mapping for the whole run, and their names (card
name, figure, surname) are replaced by their labels inside the text too, so nothing leaks.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence

from council.seats.seat import Seat
from council.transcript.records import Turn


def anonymous_labels(panel: Sequence[Seat], run_id: str) -> dict[str, str]:
    """Seat name -> "Member A", ...; shuffled per run so the letter does not reveal seat order."""
    names = [seat.name for seat in panel]
    random.Random(run_id).shuffle(names)
    letters = string.ascii_uppercase
    return {name: f"Member {letters[i % 26]}{i // 26 or ''}" for i, name in enumerate(names)}


def plain_figure(seat: Seat) -> str | None:
    """The figure without dates: "Karl Popper (1902–1994)" -> "Karl Popper"."""
    figure = seat.persona.fields.figure
    return re.sub(r"\s*\(.*?\)", "", figure).strip() or None if figure else None


def name_variants(seat: Seat) -> list[str]:
    """Ways a text may name a seat: card name, figure, first and last name, surname."""
    variants = {seat.persona.name, seat.persona.name.replace("-", " ")}
    figure = plain_figure(seat)
    if figure:
        words = figure.split()
        variants |= {figure, f"{words[0]} {words[-1]}", words[-1]}
    return sorted((v for v in variants if len(v) > 2), key=len, reverse=True)


class Anonymizer:
    def __init__(self, panel: Sequence[Seat], labels: dict[str, str]) -> None:
        self.labels = labels
        self._patterns = [
            (re.compile(rf"\b{re.escape(variant)}\b", re.IGNORECASE), labels[seat.name])
            for seat in panel
            for variant in name_variants(seat)
        ]

    def scrub(self, text: str) -> str:
        for pattern, label in self._patterns:
            text = pattern.sub(label, text)
        return text


def display_name(seat: Seat) -> str:
    figure = plain_figure(seat)
    return f"{seat.name} ({figure})" if figure else seat.name


def visible_context(
    reader: Seat,
    sections: Sequence[tuple[str, list[Turn]]],
    seats: dict[str, Seat],
    anonymizer: Anonymizer | None,
) -> str:
    """Render the turns a reader may see, stage by stage, as Markdown."""
    blocks: list[str] = []
    for title, turns in sections:
        entries: list[tuple[str, str]] = []
        for turn in turns:
            text = turn.content if turn.ok and turn.content else "(no answer: this seat failed)"
            if turn.seat == reader.name:
                own = text if turn.ok else "(you gave no answer: your call failed)"
                entries.append(("You (your earlier answer)", own))
            elif anonymizer is not None:
                entries.append((anonymizer.labels[turn.seat], anonymizer.scrub(text)))
            else:
                entries.append((display_name(seats[turn.seat]), text))
        # Own answer first, then others in label order (not seat order, which could identify).
        entries.sort(key=lambda entry: (not entry[0].startswith("You"), entry[0]))
        body = "\n\n".join(f"### {label}\n{text}" for label, text in entries)
        blocks.append(f"## {title}\n\n{body}")
    return "\n\n".join(blocks)
