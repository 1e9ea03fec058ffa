"""A card's system prompt: its body rendered with its own fields and the council's topic."""

from __future__ import annotations

from council.personas.card import PersonaCard
from council.templates import render_template


def template_variables(card: PersonaCard, topic: str) -> dict[str, object]:
    fields = card.fields.model_dump(exclude={"extensions", "model", "provider_affinity"})
    return {**fields, "topic": topic}


def system_prompt(card: PersonaCard, topic: str) -> str:
    """Render the card body; errors name the card file and the body line."""
    return render_template(
        card.body, template_variables(card, topic), path=card.path, first_line=card.body_line
    )
