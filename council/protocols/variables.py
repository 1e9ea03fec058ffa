"""The variables a stage's ``prompt`` template may use: each name, what it holds, and a value of
the kind the engine passes.

This table is the contract between a protocol file and the engine. Every stage's prompt gets
``EVERY_STAGE``; a stage kind that offers more says so itself (``prompt_variables`` on its class
in council/protocols/spec.py: a guard's readings, a synthesis's council). The engine builds the
values (council/engine/prompts.py for every stage, each kind's ``StageKind.variables`` for its
own); ``tests/test_template_variables.py`` holds the engine to this table, ``council protocols
validate`` renders every prompt with the examples (council/protocols/rehearse.py), and
build-support/template_variables.py writes docs/template-variables.md from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from council.personas.card import CardFields
from council.personas.prompt import HIDDEN_FIELDS


@dataclass(frozen=True)
class TemplateVariable:
    name: str
    means: str  # one line, for the reference page and the scaffold's comments
    example: object  # what `protocols validate` renders the prompt with


V = TemplateVariable

EVERY_STAGE: tuple[TemplateVariable, ...] = (
    V(
        "question",
        "the question the council was asked",
        "Should a city ban private cars from its centre?",
    ),
    V("seat", "the seat's name (usually its card's name)", "popper"),
    V("persona", "the name of the persona card the seat holds", "popper"),
    V("stage", "this stage's id", "opening"),
    V("members", "how many seats the panel has (the chair not counted)", 3),
    V("round", "this round, from 1 (always 1 outside a loop)", 1),
    V("rounds", "the rounds of the loop the stage sits in (1 outside a loop)", 1),
    V(
        "card",
        "the seat's own card: card.description, card.role, card.asks, ... (card.* below)",
        {},
    ),
    V("questioner", "true when the seat is one of the protocol's questioners", False),
)

GUARD: tuple[TemplateVariable, ...] = (
    V("agreement", "the checked vote's agreement, as a percentage ('72%')", "72%"),
    V("leading", "the checked vote's leading stance ('none' when there is none)", "yes"),
    V("dissenters", "how many seats voted against the leading stance", 1),
    V("diversity", "the watched stage's mean pairwise distance ('unmeasured' if not)", "0.142"),
    V("diversity_floor", "the threshold or no-persona baseline it was read against", "0.205"),
    V("diversity_p", "its p-value against the no-persona baseline ('unmeasured' if none)", "0.412"),
    V(
        "drifting",
        "seats past the drift cap, with their positions ('none' when none)",
        "popper (0.91)",
    ),
    V(
        "reasked",
        "a hemlock guard: the questions asked again ('none' when none)",
        "What is a centre?",
    ),
)

SYNTHESIS: tuple[TemplateVariable, ...] = (
    V(
        "routing",
        "one line per panel seat: '- seat → provider → model'",
        "- popper → openai → gpt-4o-mini",
    ),
    V(
        "member_names",
        "the panel seats' names, a list (join them: member_names | join(', '))",
        ["popper", "kuhn", "meadows"],
    ),
    V(
        "domain_seat",
        "the seats weighted as the question's domain seat, or 'none (...)'",
        "none (no domain-weight seat)",
    ),
    V("chair_model", "the chair's model", "gpt-4o-mini"),
    V("chair_provider", "the chair's provider", "openai"),
    V("chair_shares_provider", "true when the chair's provider also serves a panel seat", True),
)

# What a card field means where its own Field() has no description.
_CARD_MEANS = {
    "name": "the card's name",
    "description": "who the persona is, in a sentence",
    "role": "the persona's role on a council",
    "figure": "the real or fictional figure it is modelled on (may be none)",
    "traits": "character traits, a list",
    "blind_spots": "what the persona tends to miss, a list",
    "polarity_pairs": "cards it is seated opposite, a list",
    "tags": "free-form tags, a list",
}
_CARD_EXAMPLE: dict[str, object] = {
    "name": "popper",
    "description": "A philosopher of science who tests bold conjectures.",
    "role": "critic",
    "figure": "Karl Popper",
    "traits": ["critical"],
    "framework": ["falsification"],
    "asks": ["What would show this is false?"],
    "blind_spots": ["tacit knowledge"],
    "polarity_pairs": ["kuhn"],
    "reasoning_method": "conjecture and refutation",
    "domain": "science",
    "polarity": "falsify first",
    "tags": ["science"],
}


def card_variables() -> tuple[TemplateVariable, ...]:
    """``card.<field>``: every card field a body may name (council/personas/prompt.py), and
    ``card.topic``, the question; a card's own declared ``variables`` are there too."""
    found = []
    for name, info in CardFields.model_fields.items():
        if name in HIDDEN_FIELDS or name == "variables":
            continue
        means = _CARD_MEANS.get(name) or info.description or name.replace("_", " ")
        found.append(V(f"card.{name}", means, _CARD_EXAMPLE.get(name)))
    found.append(V("card.topic", "the question (as a card body's own 'topic' reads it)", ""))
    return tuple(found)


def examples(variables: tuple[TemplateVariable, ...], topic: str) -> dict[str, object]:
    """The variables with their example values, ``card`` filled in: what a rehearsal renders."""
    values = {v.name: v.example for v in variables}
    if "card" in values:
        card = {v.name.removeprefix("card."): v.example for v in card_variables()}
        values["card"] = card | {"topic": topic}
    return values
