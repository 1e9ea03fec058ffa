"""A card's system prompt: its body rendered with its own fields and the council's topic."""

from __future__ import annotations

import re

from council.personas.card import CardFields, PersonaCard
from council.text.templates import render_template

# Fields that steer seating, not wording: the body cannot see them.
HIDDEN_FIELDS = frozenset(
    {
        "extensions",
        "model",
        "provider_affinity",
        "variables",
        "triads",
        "profiles",
        "duo_keywords",
        "tier",
    }
)


def template_variables(card: PersonaCard, topic: str) -> dict[str, object]:
    """Card fields, then the card's declared ``variables``, then ``topic`` (the council's wins)."""
    fields = card.fields.model_dump(exclude=set(HIDDEN_FIELDS))
    return {**fields, **card.fields.variables, "topic": topic}


def provided_names(fields: CardFields) -> set[str]:
    """Every name a card body may use; anything else is a variable nobody provides."""
    return (set(CardFields.model_fields) - HIDDEN_FIELDS) | set(fields.variables) | {"topic"}


def system_prompt(card: PersonaCard, topic: str) -> str:
    """Render the card body; errors name the card file and the body line."""
    return render_template(
        card.body, template_variables(card, topic), path=card.where, first_line=card.body_line
    )


# "{{", "{%", "{#" open Jinja tags; a "{" at the very end could join a tag that follows it.
_TAG_OPENING = re.compile(r"\{(?=[{%#])|\{\Z")


def escape_jinja(text: str) -> str:
    """Make foreign text inert in a card body: it renders as itself and never runs as Jinja.

    Only the openings of tags are touched (``{{`` becomes ``{{ '{' }}{``), so plain prose is
    left as written and ``}}`` needs no escaping outside a tag.
    """
    return _TAG_OPENING.sub("{{ '{' }}", text)
