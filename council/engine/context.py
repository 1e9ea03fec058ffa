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
from dataclasses import dataclass

from council.records.describe import describe_tally
from council.records.run import Tally, Turn
from council.seats.seat import Seat

_LABEL = re.compile(r"\b(Response|Member) ([A-Z]{1,2}\d*)\b")


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

    def reveal(self, text: str, names: dict[str, str]) -> str:
        """For readers who see names (the chair): "Response B" / "Member B" -> that seat."""
        by_letter = {label.split()[-1]: names[seat] for seat, label in self.labels.items()}
        return _LABEL.sub(lambda m: by_letter.get(m.group(2), m.group(0)), text)


def display_name(seat: Seat) -> str:
    figure = plain_figure(seat)
    return f"{seat.name} ({figure})" if figure else seat.name


@dataclass(frozen=True)
class Section:
    """One earlier stage as a reader sees it: its turns and, for votes and rankings, the tally."""

    title: str
    turns: list[Turn]
    tally: Tally | None = None


def visible_context(
    reader: Seat,
    sections: Sequence[Section],
    seats: dict[str, Seat],
    anonymizer: Anonymizer | None,
    *,
    ballot_style: bool = False,
    revealer: Anonymizer | None = None,
) -> str:
    """Render what a reader may see, stage by stage, as Markdown.

    ``ballot_style`` is for rankings: answers appear as "Response A" and the reader's own answer
    is left out, so it cannot rank itself. ``revealer`` turns the labels seats used in their
    own text ("Response B is weakest") into names, for readers who see names.
    """
    names = {
        seat: (anonymizer.labels[seat] if anonymizer else display_name(seats[seat]))
        for seat in seats
        if anonymizer is None or seat in anonymizer.labels
    }
    blocks: list[str] = []
    for section in sections:
        entries: list[tuple[str, str]] = []
        for turn in section.turns:
            text = turn.text if turn.ok and turn.text else "(no answer: this seat failed)"
            if turn.seat == reader.name:
                if ballot_style:
                    continue
                own = text if turn.ok else "(you gave no answer: your call failed)"
                entries.append(("You (your earlier answer)", own))
            elif anonymizer is not None:
                label = anonymizer.labels[turn.seat]
                label = label.replace("Member", "Response") if ballot_style else label
                entries.append((label, anonymizer.scrub(text)))
            else:
                shown = revealer.reveal(text, names) if revealer is not None else text
                entries.append((display_name(seats[turn.seat]), shown))
        # Own answer first, then others in label order (not seat order, which could identify).
        entries.sort(key=lambda entry: (not entry[0].startswith("You"), entry[0]))
        body = "\n\n".join(f"### {label}\n{text}" for label, text in entries)
        if section.tally is not None:
            body += "\n\n" + describe_tally(section.tally, names)
        blocks.append(f"## {section.title}\n\n{body}")
    return "\n\n".join(blocks)
