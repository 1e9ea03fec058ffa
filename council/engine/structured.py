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

from typing import Any

from council.protocols.ballots import ballot_scale
from council.protocols.spec import VoteStage
from council.records.replies import ballot_object, field_text


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


def structured_fields(text: str, *, cut: bool = False) -> dict[str, Any] | None:
    """The fields of the reply's JSON ballot (``council.records.replies.ballot_object``: the
    last whole one; with ``cut``, failing that, one its token cap cut short), or None."""
    found = ballot_object(text, cut=cut)
    return found[1] if found is not None else None


def json_vote(fields: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """(stance, confidence, dealbreaker, problem) from a JSON ballot, as the line gives them."""
    stance = field_text(fields.get("stance"))
    problem = None if stance and stance.strip() else "the JSON ballot has no stance"
    return (
        stance if not problem else None,
        field_text(fields.get("confidence")),
        field_text(fields.get("dealbreaker")),
        problem,
    )
