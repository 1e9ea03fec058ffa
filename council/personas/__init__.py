"""Persona cards: loading, validation, and sandboxed rendering into system prompts."""

from council.personas.card import CardFields, PersonaCard, load_card, parse_card
from council.personas.library import CHAIR, available_personas, find_persona
from council.personas.prompt import system_prompt

__all__ = [
    "CHAIR",
    "CardFields",
    "PersonaCard",
    "available_personas",
    "find_persona",
    "load_card",
    "parse_card",
    "system_prompt",
]
