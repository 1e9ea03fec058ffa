"""Reply lengths (``council.engine.lengths``): a stage's word limit stated once in its prompt,
the token cap it implies, each reply counted against it; caps a user raises as well as lowers
from every interface; replies cut off at their cap recorded, shown, and continued once when
asked. Councils run on the test doubles and on the loopback fake provider through litellm,
which cuts replies off at ``max_tokens`` the way a real server does."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from council import Council, SamplingSettings
from council.cli.main import main
from council.cli.output import EXIT_VERDICT_UNCHECKED
from council.cli.progress import ProgressDisplay
from council.engine.budget import worst_case_tokens
from council.engine.lengths import CONTINUE_INSTRUCTION, count_words, implied_cap
from council.records.run import RunResult
from council.records.settings import Budget, CallSettings
from council.seats import ModelRequest
from council.seats.litellm_model import LiteLLMModel
from council.store.loader import load_run
from council.testing import FakeProvider, FunctionModel, well_formed_reply

QUESTION = "Should the city close its harbour to cruise ships?"
PANEL = ["popper", "kuhn"]
PROTOCOL = """\
name: lengths
description: A stage of each kind of length.
max_tokens: 200
stages:
  - id: opening
    kind: statement
    words: 120
    prompt: "The question: {{ question }}"
  - id: brief
    kind: response
    sees: [opening]
    words: 30
    max_tokens: 70
    prompt: Answer the others briefly.
  - id: final
    kind: vote
    sees: [brief]
    words: 50
    prompt: State your final position.
  - id: verdict
    kind: synthesis
    sees: [final]
    prompt: Write the verdict.
"""
LIMIT = {"opening": 120, "brief": 30, "final": 50}
# For cut-off replies: no vote, whose missing line a cut would have asked for again.
WITHOUT_VOTE = PROTOCOL.replace(
    "  - id: final\n    kind: vote\n    sees: [brief]\n"
    "    words: 50\n    prompt: State your final position.\n",
    "",
)
WITHOUT_VOTE = WITHOUT_VOTE.replace("sees: [final]", "sees: [brief]")


@pytest.fixture
def protocol(tmp_path: Path) -> str:
    path = tmp_path / "lengths.yaml"
    path.write_text(PROTOCOL)
    return str(path)


@pytest.fixture
def unvoted(tmp_path: Path) -> str:
    path = tmp_path / "unvoted.yaml"
    path.write_text(WITHOUT_VOTE)
    assert "kind: vote" not in WITHOUT_VOTE
    return str(path)


def words(n: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


def convene(protocol: str, reply: Any, **kwargs: Any) -> tuple[RunResult, FunctionModel]:
    model = FunctionModel(reply)
    council = Council(
        PANEL, protocol=protocol, model=model, runs_dir=None, similarity="words", **kwargs
    )
    return council.convene(QUESTION), model


def asked(model: FunctionModel, stage: str) -> list[ModelRequest]:
    return [r for r in model.requests if r.stage == stage]


# -- word limits ---------------------------------------------------------------------------


def test_the_word_limit_is_stated_once_after_the_stage_prompt(protocol: str) -> None:
    _, model = convene(protocol, well_formed_reply)
    for stage, limit in LIMIT.items():
        for request in asked(model, stage):
            prompt = request.messages[-1]["content"]
            assert prompt.count("Limit:") == 1 and f"Limit: {limit} words maximum." in prompt
    opening = asked(model, "opening")[0].messages[-1]["content"]
    assert opening.endswith("The question: " + QUESTION + "\n\nLimit: 120 words maximum.")
    # Before the format line the engine adds, so the vote line reads as what comes after.
    vote = asked(model, "final")[0].messages[-1]["content"]
    assert "Limit: 50 words maximum.\n\nEnd your reply with one line" in vote
    assert "Limit:" not in asked(model, "verdict")[0].messages[-1]["content"]


def test_a_word_limit_implies_the_cap_and_an_explicit_cap_wins(protocol: str) -> None:
    _, model = convene(protocol, well_formed_reply)
    caps = {r.stage: r.max_tokens for r in model.requests}
    assert caps == {
        "opening": implied_cap(120),  # from the limit: 2 tokens a word and the format's 48
        "brief": 70,  # the stage's own max_tokens wins over its limit
        "final": implied_cap(50),
        "verdict": 200,  # no limit: the protocol's cap
    }
    assert implied_cap(120) == 288 and implied_cap(400) == 848  # room for a reply at its limit


def test_words_are_counted_as_a_reader_counts_them() -> None:
    # Markdown marks, dashes and pipes are not words; a number is, as a word processor has it.
    assert count_words("**Don't** ship first-principles code - ever.\n\n1. Twice | done") == 8
    vote = f"{words(50)}\nship | 0.8 | none"
    assert count_words(vote, "vote") == 50  # the vote line is not the prose's
    ranking = f"{words(10)}\nFINAL RANKING:\n1. Response A\n2. Response B"
    assert count_words(ranking, "ranking") == 10


def test_a_reply_over_its_limit_is_recorded_counted_shown_and_not_asked_again(
    protocol: str,
) -> None:
    def reply(request: ModelRequest) -> str:
        if request.stage == "opening":
            return words(130 if request.seat == "popper" else 120)
        if request.stage == "final":  # 50 words of prose within the limit, then the vote line
            return f"{words(50)}\nship | 0.8 | none"
        return well_formed_reply(request)

    display = ProgressDisplay(Console(record=True, width=200, file=io.StringIO()))
    result, model = convene(protocol, reply, sinks=[display])
    assert result.status == "completed", result.error
    popper, kuhn = result.turns_in("opening")
    assert (popper.words, popper.word_limit, popper.over_limit) == (130, 120, True)
    assert (kuhn.words, kuhn.over_limit) == (120, False)  # at the limit is within it
    assert not any(t.over_limit for t in result.turns_in("final"))
    assert result.metadata is not None and result.metadata.over_limit == 1
    assert len(model.requests) == 2 * 3 + 1  # no seat was asked again for a shorter reply
    transcript = result.transcript()
    assert "130 words, over the limit of 120" in transcript
    assert "120 words, within 120" in transcript
    assert "Replies: 1 over their word limit" in transcript
    assert '"over_limit": 1' in transcript  # the session block counts it too
    shown = display.console.export_text()
    assert "opening · popper: ok (" in shown and "130/120 words" in shown
    assert "opening · kuhn: ok (" in shown and "120/120" not in shown
    # A turn with nothing to say of its length serializes as before: no new keys.
    verdict = result.turns_in("verdict")[0].to_json()
    assert not {"words", "word_limit", "over_limit", "truncated", "continued"} & set(verdict)


# -- caps a user sets ----------------------------------------------------------------------


@pytest.mark.parametrize("cap", [1000, 20], ids=["raised", "lowered"])
def test_the_python_api_cap_replaces_every_stage_cap(protocol: str, cap: int) -> None:
    _, model = convene(protocol, well_formed_reply, sampling=SamplingSettings(max_tokens=cap))
    assert {r.max_tokens for r in model.requests} == {cap}  # above 288, 148, 70, 200 or below


@pytest.mark.parametrize("cap", [1000, 20], ids=["raised", "lowered"])
def test_the_cli_cap_replaces_every_stage_cap(
    protocol: str, cap: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The verdict states the vote's outcome, as council's verdict check asks.
    with FakeProvider("A short answer: consensus.\nship | 0.8 | none") as fake:
        argv = [
            "convene",
            QUESTION,
            "--personas",
            ",".join(PANEL),
            "--protocol",
            protocol,
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--out",
            str(tmp_path / "runs"),
            "--quiet",
            "--json",
            "--attempts",
            "1",
            "--max-tokens",
            str(cap),
        ]
        assert main(argv) == 0
        sent = [body["max_tokens"] for body in fake.requests]
    assert len(sent) == 7 and set(sent) == {cap}
    run = json.loads(capsys.readouterr().out)
    assert {t["request"]["max_tokens"] for t in run["turns"]} == {cap}


def test_the_cli_help_says_the_cap_raises_as_well_as_lowers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["convene", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "replacing the protocol's (raises or lowers them" in help_text
    assert "--continue-truncated" in help_text


def test_the_web_and_mcp_caps_mean_the_same(tmp_path: Path) -> None:
    """The browser's and an MCP client's max_tokens reach the engine as the CLI's does."""
    pytest.importorskip("mcp", reason="the MCP SDK")
    from council.mcp_server.convening import Convener
    from council.mcp_server.convening import ConveneRequest as McpRequest
    from council.mcp_server.requests import ServerSettings as McpSettings
    from council.web.convene import build_council
    from council.web.settings import ConveneRequest as WebRequest
    from council.web.settings import ServerSettings as WebSettings

    with FakeProvider("A short answer.") as fake:
        web = build_council(
            WebRequest(
                question=QUESTION,
                personas=PANEL,
                protocol="quick",
                model="openai/fake",
                max_tokens=900,
            ),
            WebSettings(runs_dir=tmp_path / "web", endpoints={"openai/fake": fake.api_base}),
            sink=None,  # type: ignore[arg-type]
        )
        web.sinks = []
        web.convene(QUESTION)
        assert [body["max_tokens"] for body in fake.requests] == [900, 900, 900]  # above 200/300
    double = FunctionModel(well_formed_reply, model="test/double")
    convener = Convener(McpSettings(runs_dir=tmp_path / "mcp"), {"test/double": double})
    spec = convener.spec(
        McpRequest(
            QUESTION,
            {"personas": PANEL, "protocol": "quick", "model": "test/double", "max_tokens": 900},
        )
    )
    Council.from_spec(spec, runs_dir=tmp_path / "mcp", doubles=convener.test_models).convene(
        QUESTION
    )
    assert [r.max_tokens for r in double.requests] == [900, 900, 900]


# -- cut off at the cap --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_the_fake_provider_cuts_a_reply_off_at_max_tokens(stream: bool) -> None:
    async def ask(fake: FakeProvider, cap: int) -> Any:
        async def endpoint(_: str) -> dict[str, str]:
            return {"api_base": fake.api_base, "api_key": "fake"}

        model = LiteLLMModel(
            "openai/fake", resolve_endpoint=endpoint, stream=stream, max_attempts=1
        )
        messages = [{"role": "user", "content": "Go on."}]
        return await model.complete(
            ModelRequest(stage="s", messages=messages, max_tokens=cap, temperature=0.0)
        )

    with FakeProvider(words(30), enforce_max_tokens=True) as fake:
        cut = asyncio.run(ask(fake, 10))
        whole = asyncio.run(ask(fake, 30))
    assert (cut.finish_reason, cut.truncated, cut.content) == ("length", True, words(10))
    assert cut.completion_tokens == 10
    assert (whole.finish_reason, whole.truncated, whole.content) == ("stop", False, words(30))


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_reply_cut_off_at_its_cap_is_recorded_and_shown(
    unvoted: str, stream: bool, tmp_path: Path
) -> None:
    display = ProgressDisplay(Console(record=True, width=200, file=io.StringIO()))
    with FakeProvider(words(400), enforce_max_tokens=True) as fake:
        council = Council(
            PANEL,
            protocol=unvoted,
            model="openai/fake",
            runs_dir=tmp_path,
            endpoints={"openai/fake": fake.api_base},
            similarity="words",
            sinks=[display],
            calls=CallSettings(timeout_s=10, max_attempts=1, stream=stream),
        )
        result = council.convene(QUESTION)
        # Nothing continued (it is off by default); the verdict, cut off, is asked for once
        # more by council's verdict check, and cut off again.
        assert fake.request_count == 6
    # Every reply is longer than its cap (288, 70, 200 tokens), so every one is cut.
    assert all(t.truncated and not t.continued for t in result.turns)
    opening = result.turns_in("opening")[0]
    assert opening.content == words(288) and opening.completion_tokens == 288
    assert result.metadata is not None and result.metadata.truncated == 6
    assert result.verdict_check is not None
    assert result.verdict_check.reasons == ["length: cut off at its token cap (200 tokens)"]
    # The record keeps it: read back from the ledger, the turns are still cut off.
    again = load_run(result.run_id, tmp_path)
    assert [t.truncated for t in again.turns] == [True] * 6
    transcript = again.transcript()
    assert "cut off at 288 tokens" in transcript and "cut off at 70 tokens" in transcript
    assert transcript.count("> **Cut off** at its token cap") == 6
    assert "Replies: 4 over their word limit, 6 left cut off at their token cap" in transcript
    shown = display.console.export_text()
    assert shown.count("cut off") == 6 + 1 and "opening · popper: ok (" in shown  # + unchecked


def continuing(body: dict[str, Any]) -> str:
    """A seat that writes 400 words, and says the rest in a few when asked to continue."""
    last = body["messages"][-1]["content"]
    return f"and so {body['max_tokens']} ends here." if last == CONTINUE_INSTRUCTION else words(400)


def test_a_cut_off_reply_is_continued_once_when_asked(unvoted: str, tmp_path: Path) -> None:
    with FakeProvider(continuing, enforce_max_tokens=True) as fake:
        council = Council(
            PANEL,
            protocol=unvoted,
            model="openai/fake",
            runs_dir=tmp_path,
            endpoints={"openai/fake": fake.api_base},
            similarity="words",
            calls=CallSettings(timeout_s=10, max_attempts=1, continue_truncated=True),
        )
        result = council.convene(QUESTION)
        bodies = list(fake.requests)
    assert result.status == "completed", result.error
    assert len(bodies) == 10  # each of the 5 replies was cut, and continued once
    opening = result.turns_in("opening")[0]
    assert opening.continued and not opening.truncated  # whole now
    assert opening.content == f"{words(288)} and so 288 ends here."
    assert opening.words == 293 and opening.over_limit  # the whole reply is held to the limit
    part = next(t for t in result.turns if t.stage == "opening.continue" and t.seat == "popper")
    assert part.content == "and so 288 ends here." and part.words is None
    assert part.request is not None and part.request.max_tokens == 288
    said = part.request.messages[-2:]
    assert said == [
        {"role": "assistant", "content": words(288)},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    # What later stages read is the whole reply.
    brief = result.turns_in("brief")[0]
    assert (
        brief.request is not None
        and "and so 288 ends here." in brief.request.messages[-1]["content"]
    )
    assert result.metadata is not None
    assert (result.metadata.continued, result.metadata.truncated) == (5, 0)
    assert result.metadata.calls == 10
    transcript = load_run(result.run_id, tmp_path).transcript()
    assert "cut off at 288 tokens, continued once" in transcript
    assert "Replies: 4 over their word limit, 5 cut off and continued once" in transcript


def test_a_continuation_is_never_continued(unvoted: str, tmp_path: Path) -> None:
    with FakeProvider(words(1000), enforce_max_tokens=True) as fake:
        argv = [
            "convene",
            QUESTION,
            "--personas",
            ",".join(PANEL),
            "--protocol",
            unvoted,
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--out",
            str(tmp_path),
            "--quiet",
            "--attempts",
            "1",
            "--continue-truncated",
        ]
        # The verdict, still cut off, is asked for once more (council's verdict check), and
        # that answer is cut off, continued once and cut off again: the verdict is unchecked.
        assert main(argv) == EXIT_VERDICT_UNCHECKED
        assert fake.request_count == 12  # one continuation each, though it was cut off too
    result = load_run("latest", tmp_path)
    opening = result.turns_in("opening")[0]
    assert opening.continued and opening.truncated  # continued, and still cut off
    assert opening.content == f"{words(288)} {words(288)}"
    assert result.metadata is not None
    assert (result.metadata.continued, result.metadata.truncated) == (6, 6)
    assert "cut off at 288 tokens, continued once, cut off again" in result.transcript()


def test_a_continuation_the_budget_cannot_cover_leaves_the_reply_cut_off(
    unvoted: str, tmp_path: Path
) -> None:
    """The cut-off reply is paid for and kept; the continuation is refused before it starts."""

    def council(fake: FakeProvider, **kwargs: Any) -> Council:
        return Council(
            ["popper"],
            protocol=unvoted,
            model="openai/fake",
            runs_dir=tmp_path,
            endpoints={"openai/fake": fake.api_base},
            similarity="words",
            calls=CallSettings(timeout_s=10, max_attempts=1, continue_truncated=True),
            **kwargs,
        )

    with FakeProvider(words(400), enforce_max_tokens=True) as fake:
        first = council(fake).convene(QUESTION).turns_in("opening")[0]
        assert first.request is not None and first.continued
        opening_only = worst_case_tokens(first.request.messages, 288) + 10
        sent = fake.request_count
        result = council(fake, budget=Budget(max_tokens=opening_only)).convene(QUESTION)
        assert fake.request_count == sent + 1  # the opening, and nothing after it
    assert result.status == "stopped" and "token budget" in (result.error or "")
    opening = result.turns_in("opening")[0]
    assert opening.truncated and not opening.continued and opening.content == words(288)
    assert not [t for t in result.turns if t.stage.endswith(".continue")]
