"""Structured ballots: a vote held to the stage's ballot scale's JSON schema, and reading one.

A seat whose model can be held to a JSON schema (``ChatModel.structured_output``) is sent the
scale's schema (``vote_schema``, litellm's ``response_format``) and an instruction to answer
with the ballot as one JSON object (``structured_vote_instruction``). Its reply is read from
the JSON's fields (``structured_fields``, ``json_vote``) by the same rules as a line, and is
read for a line when the JSON cannot be (``council.engine.votes.parse_ballot``). Asked again
(``VoteKind.follow_up``), a seat whose JSON was read but could not be counted is asked for the
object again under the schema; one whose JSON could not be read at all writes the line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from council.protocols.ballots import ballot_scale
from council.protocols.spec import VoteStage


def structured_vote_instruction(stage: VoteStage) -> str:
    """What a seat whose model is held to ``vote_schema`` is asked: the ballot as JSON."""
    ranked = stage.rule == "borda"
    return ballot_scale(stage.ballot).structured_instruction(stage.options, stage.numeric, ranked)


def missing_json_instruction(stage: VoteStage, problem: str | None) -> str:
    """What a seat whose JSON ballot was read but could not be counted (an empty stance, a
    level off the scale) is asked: the object again, held to the same schema."""
    why = f" ({problem})" if problem else ""
    return (
        f"Your JSON ballot could not be counted{why}. {structured_vote_instruction(stage)} "
        "Give the whole object again, with every field filled in as asked."
    )


def vote_schema(stage: VoteStage) -> dict[str, Any]:
    """The JSON schema a structured vote is held to (the stage's ballot scale's)."""
    ranked = stage.rule == "borda"
    return ballot_scale(stage.ballot).response_schema(stage.options, stage.numeric, ranked)


def structured_fields(text: str) -> dict[str, Any] | None:
    """The last JSON object in a reply that carries a stance (a structured ballot, maybe
    followed by a re-asked line), or None: the reply is read as text."""
    decoder = json.JSONDecoder(strict=False)  # a raw newline in a string, as small models write
    found = None
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and "stance" in value:
            found = value
    return found


def _field_text(value: Any) -> str | None:
    """A JSON field as the line parser reads it: a ranking joined by '>', numbers as text."""
    if value is None:
        return None
    if isinstance(value, list):
        return " > ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def json_vote(fields: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """(stance, confidence, dealbreaker, problem) from a JSON ballot, as the line gives them."""
    stance = _field_text(fields.get("stance"))
    problem = None if stance and stance.strip() else "the JSON ballot has no stance"
    return (stance if not problem else None, _field_text(fields.get("confidence")),
            _field_text(fields.get("dealbreaker")), problem)  # fmt: skip
