"""Read-only context tools (issue 30): a seat whose model takes tools calls ``search_context``
and ``read_context`` through litellm against the fake provider, which scripts the calls; the
tools run locally on the run's documents, bounded per turn, recorded on the turn and shown in
the transcript. Models without tools get the retrieved passages as before."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.engine.context_tools import ANSWER_NOW, MAX_TOOL_ROUNDS, READ_MAX_LINES, ContextTools
from council.engine.grounding import Grounding
from council.records.events import EventList
from council.records.run import RunResult
from council.seats import CallSettings
from council.seats.litellm_import import import_litellm
from council.testing import FakeProvider
from council.testing.fake_wire import FakeReply
from council.text.documents import read_context

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*the `ReadOnly` qualifier:UserWarning",
    "ignore:Accessing the 'model_:DeprecationWarning",
)

DESIGN = """# Cache design

The cache holds 512 entries.
Eviction is least recently used.

## Risks
Cold starts take three seconds.
"""
ANSWER = 'Ship it: the cache holds 512 entries [D1:3] "The cache holds 512 entries".'
FAST = dict(timeout_s=10, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.1)
Step = Callable[[dict[str, Any]], FakeReply]


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    import_litellm()


@pytest.fixture
def design(tmp_path: Path) -> Path:
    path = tmp_path / "design.md"
    path.write_text(DESIGN, encoding="utf-8")
    return path


def search(query: str) -> FakeReply:
    return FakeReply(tool_calls=(("search_context", {"query": query}),), finish="tool_calls")


def read(doc: str, lines: str) -> FakeReply:
    return FakeReply(
        tool_calls=(("read_context", {"id": doc, "lines": lines}),), finish="tool_calls"
    )


def scripted(steps: list[Step]) -> Callable[[dict[str, Any]], FakeReply]:
    """A reply function that plays ``steps`` in order for each seat (told apart by its system
    prompt, in whichever format it travels), the last step again once they run out."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> FakeReply:
        system = (
            next(
                (
                    body[k]
                    for k in ("system", "system_instruction", "systemInstruction")
                    if k in body
                ),
                None,
            )
            or body["messages"][0]
        )
        key = json.dumps(system, sort_keys=True)
        with lock:
            calls[key] += 1
            number = calls[key]
        return steps[min(number, len(steps)) - 1](body)

    return reply


def convene(
    fake: FakeProvider, model: str, context: list[Path], tools: str, stream: bool = False
) -> RunResult:
    """The quick protocol: two seats, then the chair. Streamed, a follower shows replies as
    they come (calls stream only for one)."""
    events = EventList()
    events.wants_deltas = stream
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        model=model,
        runs_dir=None,
        endpoints={model: fake.base_for(model)},
        similarity="words",
        calls=CallSettings(**FAST, stream=stream),  # type: ignore[arg-type]
        sinks=[events],
        context=context,
        context_tools=tools,
    )
    return council.convene("Should we ship the cache?")


def offered_tools(body: dict[str, Any]) -> list[str]:
    """The tool names a request offered, in OpenAI's, Anthropic's or Gemini's form."""
    found = []
    for tool in body.get("tools") or []:
        declared = tool.get("functionDeclarations") or tool.get("function_declarations")
        if declared:  # Gemini: one tool holding every function
            found += [d["name"] for d in declared]
        else:
            found.append(tool.get("function", {}).get("name") or tool.get("name"))
    return found


# -- end to end through litellm -----------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["openai/fake", "anthropic/claude-3-5-haiku-20241022", "gemini/gemini-2.5-flash"],
    ids=["openai", "anthropic", "gemini"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_seat_searches_reads_then_answers_with_a_valid_citation(
    design: Path, model: str, stream: bool
) -> None:
    steps: list[Step] = [
        lambda _: search("how many entries does the cache hold"),
        lambda _: read("D1", "3-4"),
        lambda _: FakeReply(text=ANSWER),
    ]
    with FakeProvider(scripted(steps)) as fake:
        result = convene(fake, model, [design], "on", stream=stream)
        bodies = list(fake.requests)
    assert result.status == "completed"
    if not model.startswith("gemini/"):  # Gemini says it streams by its path, not its body
        assert all(bool(b.get("stream")) == stream for b in bodies)
    assert len(bodies) == 3 * 3  # two seats and the chair, three calls each
    assert all(offered_tools(b) == ["search_context", "read_context"] for b in bodies)
    # What the tools returned went back to the model (the prompt's own block of the document
    # reads "[D1] path (7 lines; ...)"): the lines it read, numbered, in each third call.
    read_back = json.dumps(f"[D1] {design}\n3| The cache holds 512 entries.")[1:-1]
    assert sum(read_back in json.dumps(b) for b in bodies) == 3
    for turn in result.turns:
        assert turn.ok and turn.content == ANSWER, turn.error
        assert [c.name for c in turn.tool_calls] == ["search_context", "read_context"]
        assert all(c.ok and c.result_chars > 0 for c in turn.tool_calls)
        assert [c.note for c in turn.citations] == ["[D1:3]"]
        assert turn.attempts == 3  # the turn's three calls, summed like its tokens
    transcript = result.transcript()
    assert "Tool calls (2): search_context(" in transcript
    assert 'read_context({"id": "D1", "lines": "3-4"}) ->' in transcript


def test_the_turns_tokens_are_summed_over_its_calls(design: Path) -> None:
    steps: list[Step] = [lambda _: read("D1", "1-7"), lambda _: FakeReply(text=ANSWER)]
    with FakeProvider(scripted(steps)) as fake:
        result = convene(fake, "openai/fake", [design], "on")
        prompts = [
            sum(len(str(m.get("content") or "").split()) for m in b["messages"])
            for b in fake.requests
        ]
    turns = result.turns
    assert sum(t.prompt_tokens or 0 for t in turns) == sum(prompts)
    # The fake counts answer words; a call that only calls a tool answers none.
    assert all(t.completion_tokens == len(ANSWER.split()) for t in turns)


def test_tool_rounds_are_bounded_then_the_model_must_answer(design: Path) -> None:
    def answer_only_when_told(body: dict[str, Any]) -> FakeReply:
        if body.get("tool_choice") == "none":
            return FakeReply(text=ANSWER)
        return search("cache")

    with FakeProvider(answer_only_when_told) as fake:
        result = convene(fake, "openai/fake", [design], "on")
        bodies = list(fake.requests)
    assert len(bodies) == 3 * (MAX_TOOL_ROUNDS + 1)
    last = [b for b in bodies if b.get("tool_choice") == "none"]
    assert len(last) == 3 and all(b["messages"][-1]["content"] == ANSWER_NOW for b in last)
    for turn in result.turns:
        assert turn.ok and len(turn.tool_calls) == MAX_TOOL_ROUNDS


def test_a_model_that_calls_a_tool_past_the_bound_gets_an_error_turn(design: Path) -> None:
    with FakeProvider(lambda _: search("cache")) as fake:
        result = convene(fake, "openai/fake", [design], "on")
    opening = result.turns_in("opening")
    assert opening and all(t.error and "called a tool" in t.error for t in opening)
    assert all(len(t.tool_calls) == MAX_TOOL_ROUNDS for t in opening)


def test_a_bad_tool_call_is_an_error_result_the_model_reads(design: Path) -> None:
    steps: list[Step] = [
        lambda _: FakeReply(
            tool_calls=(
                ("read_context", {"id": "D9", "lines": "1-2"}),
                ("read_context", {"id": "D1", "lines": "5-90"}),
                ("delete_file", {"path": "/etc/passwd"}),
            ),
            finish="tool_calls",
        ),
        lambda _: FakeReply(text=ANSWER),
    ]
    with FakeProvider(scripted(steps)) as fake:
        result = convene(fake, "openai/fake", [design], "on")
        second = [b for b in fake.requests if any(m["role"] == "tool" for m in b["messages"])]
    assert result.status == "completed"
    results = [m["content"] for m in second[0]["messages"] if m["role"] == "tool"]
    assert results[0] == "error: no document 'D9' (the documents are D1)"
    assert results[1] == "error: lines 5-90 are outside D1's 7 lines"
    assert results[2].startswith("error: no tool 'delete_file'")
    for turn in result.turns:
        assert turn.ok and [c.ok for c in turn.tool_calls] == [False, False, False]
    assert "-> no document 'D9'" in result.transcript()


# -- who is offered the tools -------------------------------------------------------------------


def test_a_model_without_tools_gets_the_passages_and_no_tools(design: Path) -> None:
    # openai/fake is in no model map: auto offers it nothing, and it reads the documents.
    with FakeProvider(ANSWER) as fake:
        result = convene(fake, "openai/fake", [design], "auto")
        bodies = list(fake.requests)
    assert all("tools" not in b for b in bodies)
    assert all("The cache holds 512 entries." in json.dumps(b["messages"]) for b in bodies)
    assert all(t.ok and not t.tool_calls and t.shown for t in result.turns)


def test_auto_offers_tools_to_a_model_the_map_says_takes_them(design: Path) -> None:
    with FakeProvider(ANSWER) as fake:
        convene(fake, "openai/gpt-4o-mini", [design], "auto")
        offered = [offered_tools(b) for b in fake.requests]
    with FakeProvider(ANSWER) as fake:
        convene(fake, "openai/gpt-4o-mini", [design], "off")
        refused = [offered_tools(b) for b in fake.requests]
    assert offered == [["search_context", "read_context"]] * 3
    assert refused == [[]] * 3


def test_no_documents_no_tools() -> None:
    with FakeProvider(ANSWER) as fake:
        convene(fake, "openai/gpt-4o-mini", [], "on")
        assert all("tools" not in b for b in fake.requests)


# -- the tools themselves -----------------------------------------------------------------------


def test_the_tools_read_the_documents_and_refuse_bad_arguments(tmp_path: Path) -> None:
    long = tmp_path / "long.txt"
    long.write_text("".join(f"line {n}\n" for n in range(1, 201)), encoding="utf-8")
    tools = ContextTools(Grounding(read_context([long])))
    found, call = tools.run("search_context", '{"query": "line 150"}')
    assert "150| line 150" in found and call.ok and call.result_chars == len(found)
    text, call = tools.run("read_context", '{"id": "d1", "lines": "10-300"}')
    assert text.startswith("error: lines 10-300 are outside D1's 200 lines") and not call.ok
    text, call = tools.run("read_context", '{"id": "D1", "lines": "10-200"}')
    assert f"{10 + READ_MAX_LINES - 1}| line" in text and "cut at" in text
    assert f"{10 + READ_MAX_LINES}| line" not in text
    for arguments, error in [
        ("not json", "the arguments are not JSON"),
        ("[1]", "the arguments must be a JSON object"),
        ('{"id": "D1"}', "'lines' must be a non-empty string"),
        ('{"id": "D1", "lines": "ten"}', "lines must be a range such as 14-20, not 'ten'"),
    ]:
        text, call = tools.run("read_context", arguments)
        assert (text, call.error) == (f"error: {error}", error)


def test_context_tools_is_one_spec_field_on_every_surface(design: Path) -> None:
    from council.records.options import options
    from council.records.spec import CouncilSpec

    for surface in ("cli", "mcp", "web"):
        assert "context_tools" in {o.key for o in options(surface)}, surface
    spec = CouncilSpec.model_validate({"context": [str(design)], "context_tools": "on"})
    council = Council.from_spec(spec, runs_dir=None)
    assert council.context_tools == "on" and council.resolved_spec().context_tools == "on"
    with pytest.raises(ValueError, match="context_tools"):
        CouncilSpec.model_validate({"context_tools": "sometimes"})
