"""Structured ballots: a vote stage holds a seat whose model takes a JSON schema to the ballot
scale's schema (``response_format`` through litellm), reads the JSON (``structured``), and falls
back to the text line elsewhere or when the JSON cannot be read (``parsed``)."""

from __future__ import annotations

import asyncio
import json
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

from council import Council
from council.engine.lengths import count_words
from council.engine.votes import parse_ballot
from council.protocols.ballots import MAX_STANCE_WORDS, NYK_SCALE
from council.protocols.spec import VoteStage
from council.records.replies import ballot_object, ballot_prose
from council.records.run import RunResult
from council.records.transcript import render_transcript
from council.seats import ModelRequest
from council.seats.litellm_model import LiteLLMModel, import_litellm
from council.seats.seat import make_model
from council.testing import FakeProvider, FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should the city move its buses to a monorepo of timetables?"
NYK = VoteStage(id="final", kind="vote", prompt="x", ballot="nyk")
OPTIONS = VoteStage(id="vote", kind="vote", prompt="x", options=["adopt", "reject"])


def finals(result: RunResult) -> list[Any]:
    tally = next(t for t in result.tallies if t.stage == "final")
    return tally.ballots


def run(model: Any, protocol: str = "high-council") -> RunResult:
    council = Council(PANEL, protocol=protocol, model=model, runs_dir=None, similarity="words")
    return council.convene(QUESTION)


def test_a_json_ballot_is_read_structured_and_a_line_parsed() -> None:
    reply = json.dumps(
        {"stance": "ship now", "confidence": "med", "dealbreaker": "no", "reason": "It is ready."}
    )
    ballot = parse_ballot("a", reply, NYK)
    assert ballot.valid and ballot.read == "structured"
    assert (ballot.stance, ballot.confidence, ballot.reason) == ("ship now", 0.75, "It is ready.")
    line = parse_ballot("a", "Prose.\nSTANCE: ship now | CONFIDENCE: med | DEALBREAKER: no", NYK)
    assert line.valid and line.read == "parsed" and line.stance == "ship now"
    chosen = parse_ballot(
        "a",
        '{"stance": "reject", "confidence": 0.9, "dealbreaker": "none", "reason": "r"}',
        OPTIONS,
    )
    assert chosen.valid and chosen.read == "structured" and chosen.stance == "reject"


def test_unreadable_json_falls_back_to_the_text_line() -> None:
    broken = '{"stance": "ship now", "confid\nSTANCE: wait | CONFIDENCE: low | DEALBREAKER: no'
    ballot = parse_ballot("a", broken, NYK)
    assert ballot.valid and ballot.read == "parsed" and ballot.stance == "wait"
    # JSON whose confidence is off the scale, and no line: invalid, and the JSON says why.
    bad = parse_ballot("a", '{"stance": "x", "confidence": "huge", "dealbreaker": "no"}', NYK)
    assert not bad.valid and bad.read == "structured" and "huge" in (bad.problem or "")


def test_a_structured_ballot_counts_the_words_of_its_reason() -> None:
    reply = (
        '{"stance": "x", "confidence": "high", "dealbreaker": "no", "reason": "Three words here."}'
    )
    assert count_words(reply, "vote") == 3


def test_vote_stages_ask_a_structured_model_for_json_and_read_it() -> None:
    model = FunctionModel(well_formed_reply, structured_output=True)
    result = run(model)
    assert result.status == "completed", result.error
    ballots = finals(result)
    assert ballots and all(b.valid and b.read == "structured" for b in ballots)
    final = [r for r in model.requests if r.stage == "final"]
    assert final and all(r.response_schema is not None for r in final)
    schema = final[0].response_schema or {}
    assert schema["properties"]["confidence"]["enum"] == ["high", "med", "low"]
    assert "reason" in schema["required"]
    assert "JSON object" in final[0].messages[-1]["content"]
    # Only vote stages (the final vote, and round 2 while it takes stances) are held to a
    # schema; the record says which turns were.
    held = {r.stage for r in model.requests if r.response_schema is not None}
    assert held == {"cross", "final"}
    turns = result.turns_in("final")
    assert all(t.structured and t.request and t.request.response_schema for t in turns)
    assert not any(t.structured for t in result.turns_in("blind"))


def test_a_model_without_structured_output_writes_the_line() -> None:
    model = FunctionModel(well_formed_reply)
    result = run(model)
    assert all(b.valid and b.read == "parsed" for b in finals(result))
    assert all(r.response_schema is None for r in model.requests)
    final = next(r for r in model.requests if r.stage == "final")
    assert "End your reply with one line" in final.messages[-1]["content"]


def test_json_a_seat_could_not_give_is_asked_again_as_the_line() -> None:
    def reply(request: ModelRequest) -> str:
        if request.stage != "final":
            return well_formed_reply(request)
        if "no readable vote line" in request.messages[-1]["content"]:  # asked again
            return "STANCE: keep the timetables | CONFIDENCE: high | DEALBREAKER: no"
        return "I would rather explain myself in prose."  # ignores the schema

    model = FunctionModel(reply, structured_output=True)
    result = run(model)
    ballots = finals(result)
    assert all(b.valid and b.reasked and b.read == "parsed" for b in ballots)
    reasks = [r for r in model.requests if "no readable vote line" in r.messages[-1]["content"]]
    assert len(reasks) == 3 and all(r.response_schema is None for r in reasks)  # the line
    assert [t.structured for t in result.turns_in("final.reask")] == [False] * 3


def fake_reply(body: dict[str, Any]) -> str:
    """A provider that keeps to the schema it is sent: JSON for a vote, text otherwise."""
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    if schema is None:
        return "A considered answer about the timetables, in plain prose."
    stance = schema["properties"]["stance"]
    return json.dumps(
        {
            "stance": stance["enum"][0] if "enum" in stance else "keep the timetables",
            "confidence": "high",
            "dealbreaker": "no",
            "reason": "The data supports it.",
        }
    )


def test_the_request_body_carries_the_ballot_schema_through_litellm() -> None:
    with FakeProvider(fake_reply) as fake:

        async def endpoint(_: str) -> dict[str, Any]:
            return {"api_base": fake.api_base, "api_key": "k"}

        model = LiteLLMModel(
            "openai/fake", resolve_endpoint=endpoint, structured_output=True, max_attempts=1
        )
        result = run(model)
        assert result.status == "completed", result.error
        votes = [b for b in fake.requests if "response_format" in b]
        others = [b for b in fake.requests if "response_format" not in b]
    assert len(votes) == 6 and others  # three seats in the two vote stages, nothing else
    sent = votes[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "ballot"
    assert sent["json_schema"]["schema"]["properties"]["dealbreaker"]["enum"] == ["yes", "no"]
    assert all(b.valid and b.read == "structured" for b in finals(result))
    assert {b.stance for b in finals(result)} == {"keep the timetables"}


def test_a_model_litellm_does_not_know_is_sent_no_schema() -> None:
    with FakeProvider(fake_reply) as fake:
        model = make_model("openai/fake", endpoints={"openai/fake": fake.api_base})
        assert not model.structured_output  # litellm's map does not know it
        result = run(model, protocol="high-council-quick")
        assert not any("response_format" in b for b in fake.requests)
    assert result.turns


def test_which_models_take_a_schema_and_in_what_form() -> None:
    assert LiteLLMModel("openai/gpt-4o-mini").structured_output  # litellm's model map
    assert not LiteLLMModel("openai/a-model-nobody-knows").structured_output
    local = make_model("local/smollm2-135m")  # no server starts until a call
    assert local.structured_output and isinstance(local, LiteLLMModel)
    # llama-cpp-python 0.3.x takes {"type": "json_object", "schema": ...}, not json_schema.
    request = ModelRequest(
        stage="s",
        messages=[],
        max_tokens=5,
        temperature=0,
        response_schema={"title": "ballot", "type": "object"},
    )
    params = local._params(import_litellm(), request, {"model": "openai/smollm2-135m"})
    assert params["response_format"] == {"type": "json_object", "schema": request.response_schema}


def test_the_llama_cpp_form_reaches_the_server_as_it_is_sent() -> None:
    with FakeProvider('{"stance": "x"}') as fake:

        async def endpoint(_: str) -> dict[str, Any]:
            return {"api_base": fake.api_base, "api_key": "k"}

        model = LiteLLMModel(
            "openai/fake",
            resolve_endpoint=endpoint,
            structured_output=True,
            schema_form="json_object",
            max_attempts=1,
        )
        schema = {"title": "ballot", "type": "object", "properties": {"stance": {"type": "string"}}}
        request = ModelRequest(
            stage="s",
            messages=[{"role": "user", "content": "vote"}],
            max_tokens=20,
            temperature=0,
            response_schema=schema,
        )
        completion = asyncio.run(model.complete(request))
        assert completion.structured and completion.content == '{"stance": "x"}'
        assert fake.requests[0]["response_format"] == {"type": "json_object", "schema": schema}


def test_a_free_stance_cannot_be_empty_under_a_grammar() -> None:
    # The bundled model, held to the schema by llama.cpp's grammar, gave "" for half its
    # stances until the schema said a stance has at least one character.
    stance = NYK_SCALE.response_schema(None, numeric=False, ranked=False)["properties"]["stance"]
    assert stance["type"] == "string" and stance["minLength"] == 1
    # One gave "][" instead: marks with no word are no stance.
    marks = parse_ballot("a", '{"stance": "][", "confidence": "high", "dealbreaker": "no"}', NYK)
    assert not marks.valid and "no words" in (marks.problem or "")
    # So the schema asks for a first character that is no space or ASCII mark (a letter or
    # digit of any script still starts one), and llama.cpp compiles that into its grammar.
    pattern = re.compile(stance["pattern"])
    assert all(pattern.match(ok) for ok in ["wait", "3 months", "Élan", "保持现状"])
    assert not any(pattern.match(bad) for bad in ["[", "][", " wait", '"', "-", "a\nb"])
    # Nor any ASCII mark: another opened its stance with "/> {", again no word at all.
    assert not any(pattern.match(f"{mark}a") for mark in string.punctuation)
    # No more words than the reader counts as a stance: the bundled model, held to 80
    # characters alone, filled them with 14 words the reader then refused.
    assert pattern.match(" ".join(["word"] * MAX_STANCE_WORDS))
    assert not pattern.match(" ".join(["word"] * (MAX_STANCE_WORDS + 1)))
    # Nor words joined by other whitespace the reader splits on: the bundled model wrote 13
    # words with no-break spaces between some of them, which a class of only ' ' let through.
    nbsp = "The decision was made in accordance with the principles of a democratic,\xa0democratic,"
    assert len(nbsp.split()) > MAX_STANCE_WORDS and not pattern.match(nbsp)
    splitters = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) != " "]
    assert not any(pattern.match(f"a{ch}b") or pattern.match(f"{ch}a") for ch in splitters)
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    schema = NYK_SCALE.response_schema(None, numeric=False, ranked=False)
    grammar = json_schema_to_gbnf(json.dumps(schema))
    LlamaGrammar.from_string(grammar, verbose=False)
    assert "\\u00a0" in grammar  # the escapes reach the grammar's character classes


def test_asking_what_a_model_can_do_imports_no_litellm() -> None:
    # The engine asks as it builds each request: importing litellm there would cost seconds
    # and keep the run's calls from the warm worker.
    code = (
        "import sys; from council.seats.seat import make_model; m = make_model('openai/o3-mini');"
        "assert m.structured_output and m.reasons; assert 'litellm' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_json_read_but_not_countable_is_asked_again_as_json() -> None:
    empty = '{"stance": "", "confidence": "high", "dealbreaker": "no", "reason": "r"}'
    whole = '{"stance": "keep them", "confidence": "med", "dealbreaker": "no", "reason": "r"}'

    def reply(request: ModelRequest) -> str:
        if request.stage != "final":
            return well_formed_reply(request)
        return whole if "could not be counted" in request.messages[-1]["content"] else empty

    model = FunctionModel(reply, structured_output=True)
    result = run(model)
    ballots = finals(result)
    assert all(b.valid and b.reasked and b.read == "structured" for b in ballots)
    assert {b.stance for b in ballots} == {"keep them"}
    again = [r for r in model.requests if "could not be counted" in r.messages[-1]["content"]]
    assert len(again) == 3 and all(r.response_schema is not None for r in again)
    assert "the JSON ballot has no stance" in again[0].messages[-1]["content"]


def test_a_ballot_cut_off_in_its_reason_still_votes() -> None:
    cut = '{"stance": "ship now", "confidence": "high", "dealbreaker": "no", "reason": "It is re'
    ballot = parse_ballot("a", cut, NYK)
    assert ballot.valid and ballot.read == "structured"
    assert (ballot.stance, ballot.confidence_label, ballot.reason) == (
        "ship now",
        "high",
        "It is re",
    )
    # Cut before its confidence: read, and not countable, and the JSON says why.
    early = parse_ballot("a", '{"stance": "ship now", "confi', NYK)
    assert not early.valid and early.read == "structured"
    # A cut inside an escape, and a key with no value yet.
    assert ballot_object('{"stance": "a", "reason": "x \\', cut=True) == (
        0,
        {"stance": "a", "reason": "x "},
    )
    assert ballot_object('{"stance": "a", "confidence":', cut=True) == (0, {"stance": "a"})
    assert ballot_object('{"stance": "a", "confidence":') is None  # only a reply known cut


def test_a_json_ballot_reads_as_prose_to_seats_the_transcript_and_the_meter() -> None:
    reply = json.dumps(
        {"stance": "wait", "confidence": "low", "dealbreaker": "no", "reason": "The data is thin."}
    )
    assert ballot_prose(reply) == (
        "The data is thin.\n\nSTANCE: wait | CONFIDENCE: low | DEALBREAKER: no"
    )
    # Prose before the object is kept; a re-asked ballot after a first one reads both.
    assert ballot_prose(f"Thinking aloud.\n{reply}").startswith("Thinking aloud.\n\nThe data")
    again = json.dumps({"stance": "go", "confidence": "high", "dealbreaker": "yes", "reason": ""})
    both = ballot_prose(f"{reply}\n\n{again}")
    assert both.endswith("DEALBREAKER: no\n\nSTANCE: go | CONFIDENCE: high | DEALBREAKER: yes")
    assert "{" not in both
    assert ballot_prose("Plain prose, no ballot.") == "Plain prose, no ballot."
    model = FunctionModel(well_formed_reply, structured_output=True)
    result = run(model)
    final = result.turns_in("final")
    assert all(t.content and t.content.startswith("{") for t in final)
    assert all(t.text and "{" not in t.text and "STANCE:" in t.text for t in final)
    # What the chair was shown of the final round, and what the transcript prints, is prose.
    chair = next(r for r in model.requests if r.stage == "verdict")
    shown = "\n".join(str(m["content"]) for m in chair.messages)
    assert '"stance"' not in shown and "STANCE:" in shown
    assert '"stance"' not in render_transcript(result)


def test_a_turn_held_to_a_schema_says_so_when_it_starts() -> None:
    # A page following the run shows a structured ballot's streamed JSON as progress, not as
    # text, and its prose once it finishes (council/web/static/app.js): it needs to know at
    # the start which turns are held to a schema.
    from council.records.events import EventList, TurnStarted, event_json

    events = EventList()
    model = FunctionModel(well_formed_reply, structured_output=True)
    council = Council(
        PANEL,
        protocol="high-council",
        model=model,
        runs_dir=None,
        similarity="words",
        sinks=[events],
    )
    council.convene(QUESTION)
    started = [e for e in events.events if isinstance(e, TurnStarted)]
    held = {(e.stage, e.seat) for e in started if e.structured}
    assert held and {stage for stage, _ in held} <= {"cross", "final", "cross.reask", "final.reask"}
    assert not any(e.structured for e in started if e.stage == "blind")
    # Other turns' lines are as they were: the field is written only when set.
    plain = next(e for e in started if not e.structured)
    assert '"structured"' not in event_json(plain)
