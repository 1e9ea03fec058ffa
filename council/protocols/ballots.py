"""Ballot scales: what a vote stage's ``STANCE | CONFIDENCE | DEALBREAKER`` line means.

A scale is one typed definition that says how confidence is given (a number from 0 to 1, or
named levels with their factors), what a dealbreaker is (the finding that would reverse the
seat, or a yes/no that the opposing option is actively harmful), whether the line carries
field labels, and what the engine may do with a reply that lacks the line (read a stance from
the reply's last sentence, assume a confidence) or must not (ask the seat again, for the line
only). From that one definition come the instruction a seat is sent (``instruction``), the
JSON schema of the same fields for structured output (``json_schema``), and what the parser
accepts (``council.engine.votes``). A protocol names its scale (``ballot: nyk``); a vote stage
may name another. Scales are registered by name (``register_ballot_scale``).

- ``council`` (the default): ``STANCE | CONFIDENCE | DEALBREAKER``, confidence a number from 0
  to 1 (words such as "high" are read too), dealbreaker the finding that would change the
  seat's mind; a reply with no line may be read from its last sentence, a missing confidence
  counts 0.5, and both are noted on the ballot.
- ``nyk``: nyk's STEP 5 line (SKILL.md v1.2.0, MIT, 0xNyk):
  ``STANCE: <label> | CONFIDENCE: high|med|low | DEALBREAKER: yes|no``, factors 1.0 / 0.75 /
  0.5, and "DEALBREAKER: yes means you consider the opposing option actively harmful, not
  merely sub-optimal". A reply whose line is missing or unreadable is asked again for that
  line only; nothing is inferred from prose and no confidence is assumed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DEFAULT_BALLOT = "council"
DealbreakerMeaning = Literal["reversal", "harmful"]


class BallotScale(BaseModel):
    """The semantics of one vote line (see the module's notes)."""

    model_config = ConfigDict(frozen=True)

    name: str
    confidence: Literal["number", "levels"]
    # levels: each word and the factor a vote is weighted by; aliases read as a level.
    levels: dict[str, float] = {}
    level_aliases: dict[str, str] = {}
    dealbreaker: DealbreakerMeaning
    labelled: bool = False  # the line is written STANCE: x | CONFIDENCE: y | DEALBREAKER: z
    from_prose: bool = True  # a missing line may be read from the reply's last sentence
    assumed_confidence: float | None = 0.5  # a missing confidence; None: ask again instead

    def stance_rule(self, options: list[str] | None, numeric: bool, ranked: bool) -> str:
        if numeric:
            return "STANCE is your estimate as a single number"
        if ranked:
            example = " > ".join(options or [])
            return f"STANCE ranks all options best first, separated by '>' (e.g. {example})"
        if options:
            return f"STANCE is exactly one of: {', '.join(options)}"
        if self.labelled:
            return (
                'STANCE is one short label for the option you back (e.g. "monorepo", "ship '
                'now"); use the same words as peers you agree with, so the tally can count '
                "them, and write STANCE: abstain if you back no option"
            )
        return "STANCE is your position in a few words"

    def confidence_rule(self) -> str:
        if self.confidence == "levels":
            return f"CONFIDENCE is one of {self._levels_text()}"
        return "CONFIDENCE is a number from 0 to 1"

    def dealbreaker_rule(self) -> str:
        if self.dealbreaker == "harmful":
            # nyk's definition, quoted (SKILL.md v1.2.0 STEP 5, MIT, 0xNyk).
            return (
                "DEALBREAKER: yes means you consider the opposing option actively harmful, "
                "not merely sub-optimal (it is reported in the minority report even if you are "
                "outvoted); otherwise no"
            )
        return "DEALBREAKER is what would change your mind, or 'none'"

    def line_form(self) -> str:
        if self.labelled:
            confidence = self._levels_text() if self.confidence == "levels" else "<0 to 1>"
            deal = "yes|no" if self.dealbreaker == "harmful" else "<what would change your mind>"
            return f"STANCE: <option> | CONFIDENCE: {confidence} | DEALBREAKER: {deal}"
        return "STANCE | CONFIDENCE | DEALBREAKER"

    def instruction(self, options: list[str] | None, numeric: bool, ranked: bool) -> str:
        """The line a seat is asked to end with, as the seat reads it."""
        return (
            f"End your reply with one line, the last, in the form {self.line_form()}, where "
            f"{self.stance_rule(options, numeric, ranked)}; {self.confidence_rule()}; "
            f"{self.dealbreaker_rule()}."
        )

    def json_schema(self, options: list[str] | None, numeric: bool, ranked: bool) -> dict[str, Any]:
        """The same fields as a JSON schema, for models that answer in structured output."""
        stance: dict[str, Any]
        if numeric:
            stance = {"type": "number"}
        elif ranked:
            stance = {"type": "array", "items": {"enum": list(options or [])}, "minItems": 1}
        elif options:
            stance = {"enum": [*options, "abstain"]}
        else:
            # minLength and the first character: under a grammar (llama.cpp) a small model
            # otherwise gives "", or fills the field with "[" or "][" (the bundled model did in
            # 2 of 18 ballots); a letter or digit of any script still starts a stance.
            stance = {
                "type": "string",
                "minLength": 1,
                "maxLength": 80,
                "pattern": FREE_STANCE_PATTERN,
            }
        confidence: dict[str, Any] = (
            {"enum": list(self.levels)}
            if self.confidence == "levels"
            else {"type": "number", "minimum": 0, "maximum": 1}
        )
        dealbreaker: dict[str, Any] = (
            {"enum": ["yes", "no"]} if self.dealbreaker == "harmful" else {"type": "string"}
        )
        return {
            "type": "object",
            "properties": {
                "stance": {**stance, "description": self.stance_rule(options, numeric, ranked)},
                "confidence": {**confidence, "description": self.confidence_rule()},
                "dealbreaker": {**dealbreaker, "description": self.dealbreaker_rule()},
            },
            "required": ["stance", "confidence", "dealbreaker"],
            "additionalProperties": False,
        }

    def structured_instruction(self, options: list[str] | None, numeric: bool, ranked: bool) -> str:
        """What a seat held to ``response_schema`` is asked: the same rules, as JSON fields."""
        fields = '{"stance": ..., "confidence": ..., "dealbreaker": ..., "reason": ...}'
        return (
            f"Answer with one JSON object and nothing else: {fields}, where "
            f"{self.stance_rule(options, numeric, ranked)}; {self.confidence_rule()}; "
            f"{self.dealbreaker_rule()}; REASON is your argument for it, all the prose of "
            "your reply."
        )

    def response_schema(
        self, options: list[str] | None, numeric: bool, ranked: bool
    ) -> dict[str, Any]:
        """The schema a structured vote is sent: ``json_schema`` and a one-line reason (the
        ballot's argument, which a line-form reply gives as prose before its line)."""
        schema = self.json_schema(options, numeric, ranked)
        reason = {"type": "string", "description": "your argument for it: your reply's prose"}
        return {
            **schema,
            "title": "ballot",
            "properties": {**schema["properties"], "reason": reason},
            "required": [*schema["required"], "reason"],
        }

    def level(self, word: str) -> str | None:
        """The level a word names ("Medium" -> med), or None."""
        word = word.strip().lower()
        word = self.level_aliases.get(word, word)
        return word if word in self.levels else None

    def _levels_text(self) -> str:
        return "|".join(self.levels)


# A free stance is "a position in a few words": at most this many words (the ballot reader
# refuses more, ``council.engine.votes``, and the schema holds a model to the same).
MAX_STANCE_WORDS = 12
# A free-text stance as a JSON schema pattern (ECMA regex, as OpenAI, Gemini and llama.cpp's
# grammar read it): a first character that is no space and no ASCII punctuation (the bundled
# model opened a stance with "/> {", which has no word the reader can compare), then up to
# MAX_STANCE_WORDS words of at most 24 characters on one line, separated by single spaces.
# A word holds no whitespace of any kind the reader splits on (str.split: the bundled model
# joined 13 words with no-break spaces, which a class of only ' ' let through); written as
# \uXXXX escapes, which llama.cpp's grammar, ECMA and Python regexes all read (not \s).
_SPACES = (
    r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
    r"\u3000"
)
_FIRST = rf"[^{_SPACES}!-/:-@\[-`{{-~]"  # ASCII marks: the ranges around digits, letters
_WORD = rf'[^{_SPACES}"\\]'
FREE_STANCE_PATTERN = f"^{_FIRST}{_WORD}{{0,23}}( {_WORD}{{1,24}}){{0,{MAX_STANCE_WORDS - 1}}}$"

COUNCIL_SCALE = BallotScale(name="council", confidence="number", dealbreaker="reversal")
NYK_SCALE = BallotScale(
    name="nyk",
    confidence="levels",
    levels={"high": 1.0, "med": 0.75, "low": 0.5},
    level_aliases={"medium": "med", "moderate": "med", "mid": "med"},
    dealbreaker="harmful",
    labelled=True,
    from_prose=False,
    assumed_confidence=None,
)
BALLOT_SCALES: dict[str, BallotScale] = {}


def register_ballot_scale(scale: BallotScale) -> None:
    BALLOT_SCALES[scale.name] = scale


def ballot_scale(name: str | None) -> BallotScale:
    """The registered scale of that name (the default scale for None)."""
    return BALLOT_SCALES[name or DEFAULT_BALLOT]


def check_ballot_name(value: str | None) -> str | None:
    """For the spec's validators: a name no scale is registered under is refused."""
    if value is not None and value not in BALLOT_SCALES:
        raise ValueError(f"unknown ballot scale '{value}' (known: {', '.join(BALLOT_SCALES)})")
    return value


register_ballot_scale(COUNCIL_SCALE)
register_ballot_scale(NYK_SCALE)
