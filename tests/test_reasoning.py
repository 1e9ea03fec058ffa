"""Reasoning models: the thinking a model returns beside its answer (``reasoning_content``) is
recorded apart from it, never shown to other seats nor measured; its tokens are counted apart;
``reasoning_effort`` is set per seat; and caps leave room so reasoning cannot starve an answer
(one that does is recorded ``starved`` and asked again with a larger cap)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.base.errors import ConfigError, CouncilError
from council.cli.main import main
from council.engine.lengths import REASONING_HEADROOM, retry_cap
from council.engine.live import TurnListener
from council.meter.analysis import analyse_run
from council.meter.embedders import FakeEmbedder
from council.records.events import EventList
from council.records.run import RunResult
from council.records.settings import CallSettings
from council.seats import ModelRequest
from council.seats.litellm_model import LiteLLMModel, import_litellm
from council.seats.seat import make_model
from council.seats.slots import read_seat_slots
from council.testing import FakeProvider, FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should the city move its buses to a monorepo of timetables?"
THOUGHT = "PRIVATE-THOUGHT weighing the options one by one before I answer"
ANSWER = "The council should pilot the change on two routes first and measure delays."


def convene(
    fake: FakeProvider, model: str = "openai/fake", stream: bool = True, **kwargs: Any
) -> RunResult:
    settings = CallSettings(stream=stream)
    seat_model = make_model(model, endpoints={model: fake.api_base}, settings=settings)
    # A streamed run has a follower that shows replies as they come: calls stream only then.
    council = Council(
        PANEL,
        model=seat_model,
        runs_dir=kwargs.pop("runs_dir", None),
        similarity="words",
        sinks=[EventList(wants_deltas=stream)],
        **kwargs,
    )
    return council.convene(QUESTION)


def test_reasoning_is_recorded_apart_and_never_shown_to_other_seats() -> None:
    with FakeProvider(ANSWER, reasoning=THOUGHT) as fake:
        result = convene(fake)
        bodies = json.dumps(fake.requests)
    assert result.status == "completed", result.error
    assert all(t.reasoning == THOUGHT for t in result.turns)
    assert not any(THOUGHT in (t.content or "") for t in result.turns)
    assert result.synthesis is not None and "PRIVATE-THOUGHT" not in result.synthesis
    # No seat (the chair included) was sent another's reasoning: nothing sent carries it.
    assert "PRIVATE-THOUGHT" not in bodies
    assert "PRIVATE-THOUGHT" not in result.transcript()
    # It is in the record's JSON, with its tokens counted apart, within completion tokens.
    turn = result.turns[0].to_json()
    assert turn["reasoning"] == THOUGHT and turn["reasoning_tokens"] == len(THOUGHT.split())
    assert turn["completion_tokens"] == len(THOUGHT.split()) + len(ANSWER.split())
    assert result.metadata is not None
    assert result.metadata.reasoning_tokens == len(result.turns) * len(THOUGHT.split())


def test_the_meter_never_embeds_reasoning() -> None:
    class Recording(FakeEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.texts: list[str] = []

        def encode(self, texts: Sequence[str]) -> Any:
            self.texts.extend(texts)
            return super().encode(texts)

    with FakeProvider(ANSWER, reasoning=THOUGHT) as fake:
        result = convene(fake)
    embedder = Recording()
    analyse_run(result, embedder)
    assert embedder.texts and not any("PRIVATE-THOUGHT" in text for text in embedder.texts)


def test_a_turn_without_reasoning_serializes_as_before() -> None:
    with FakeProvider(ANSWER) as fake:
        result = convene(fake)
    turn = result.turns[0].to_json()
    assert not {"reasoning", "reasoning_tokens", "starved", "structured"} & set(turn)
    assert "reasoning_effort" not in turn["request"]
    assert result.metadata is not None and "reasoning_tokens" not in result.metadata.to_json()


def long_thought(words: int) -> str:
    return " ".join(f"step{i}" for i in range(words))


def test_caps_leave_reasoning_room_so_the_answer_is_never_empty() -> None:
    # 600 reasoning tokens: more than the council protocol's caps (200, 320) hold, well
    # within them with the headroom of a model known to reason.
    thought = long_thought(600)
    with FakeProvider(ANSWER, reasoning=thought, enforce_max_tokens=True) as fake:
        known = make_model("openai/o3-mini", endpoints={"openai/o3-mini": fake.api_base})
        assert known.reasons  # litellm's model map
        council = Council(PANEL, model=known, runs_dir=None, similarity="words")
        result = council.convene(QUESTION)
        caps = [b.get("max_completion_tokens", b.get("max_tokens")) for b in fake.requests]
    assert result.status == "completed", result.error
    assert all(t.content == ANSWER and not t.truncated and not t.starved for t in result.turns)
    assert min(caps) == 200 + REASONING_HEADROOM["medium"]


def test_without_headroom_the_same_model_would_have_answered_nothing() -> None:
    """The control: a model nobody said reasons gets the protocol's bare caps, and its
    reasoning starves each answer; each is then asked again, once, with a larger cap."""
    thought = long_thought(600)
    with FakeProvider(ANSWER, reasoning=thought, enforce_max_tokens=True) as fake:
        result = convene(fake)
        caps = [b["max_tokens"] for b in fake.requests]
    replies = [t for t in result.turns if not t.stage.endswith(".retry")]
    retries = [t for t in result.turns if t.stage.endswith(".retry")]
    assert all(t.starved and t.content == ANSWER and t.error is None for t in replies)
    assert len(retries) == len(replies) and all(t.ok and not t.starved for t in retries)
    assert sorted(set(caps)) == [200, 320, retry_cap(200), retry_cap(320)]
    assert result.status == "completed", result.error
    assert result.metadata is not None and result.metadata.starved == len(replies)
    assert "reasoning used the whole first cap" in result.transcript()


def test_a_retry_that_starves_again_leaves_the_turn_empty_and_says_why() -> None:
    def thought(body: dict[str, Any]) -> str:  # however large the cap, reasoning fills it
        return long_thought(body["max_tokens"])

    with FakeProvider(ANSWER, reasoning=thought, enforce_max_tokens=True) as fake:
        result = convene(fake, stream=False)
    first = result.turns_in("opening")
    assert first and all(t.starved and t.error == "empty reply" for t in first)
    assert len(result.turns_in("opening.retry")) == len(first)  # asked again once, not twice
    assert result.status == "failed"


def test_reasoning_effort_is_sent_per_seat_and_sizes_its_cap() -> None:
    with FakeProvider(ANSWER, reasoning=THOUGHT) as fake:
        result = convene(fake, reasoning_effort={"kuhn": "high", "*": "low"})
        sent = [(b["reasoning_effort"], b["max_tokens"]) for b in fake.requests]
    assert result.status == "completed", result.error
    by_seat = {t.seat: t.request for t in result.turns if t.stage == "opening"}
    assert by_seat["kuhn"] is not None and by_seat["kuhn"].reasoning_effort == "high"
    assert by_seat["popper"] is not None and by_seat["popper"].reasoning_effort == "low"
    assert by_seat["kuhn"].max_tokens == 200 + REASONING_HEADROOM["high"]
    assert by_seat["popper"].max_tokens == 200 + REASONING_HEADROOM["low"]
    assert {effort for effort, _ in sent} == {"high", "low"}
    efforts = {s.seat: s.reasoning_effort for s in result.seats}
    assert efforts == {"popper": "low", "kuhn": "high", "meadows": "low", "chair": "low"}


def test_an_unknown_effort_or_seat_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="'extreme' is not one of none, minimal"):
        Council(
            PANEL, model=FunctionModel(well_formed_reply), runs_dir=None, reasoning_effort="extreme"
        )
    with pytest.raises(CouncilError, match="nobody"):
        Council(
            PANEL,
            model=FunctionModel(well_formed_reply),
            runs_dir=None,
            reasoning_effort={"nobody": "low"},
        )


def test_a_slot_file_gives_seats_their_effort(tmp_path: Path) -> None:
    slots = tmp_path / "seats.yaml"
    slots.write_text(
        "seats:\n  kuhn: {provider: openai, model: o3-mini, reasoning_effort: high}\n"
        "chairman: {provider: openai, model: o3-mini, reasoning_effort: low}\n"
    )
    plan = read_seat_slots(slots)
    assert plan.reasoning_efforts == {"kuhn": "high", "chair": "low"}
    council = Council(PANEL, runs_dir=None, seat_slots=plan)
    assert council.reasoning_efforts == {"kuhn": "high", "chair": "low"}
    slots.write_text("seats:\n  kuhn: {provider: openai, model: o3, reasoning_effort: max}\n")
    with pytest.raises(Exception, match="reasoning_effort"):
        read_seat_slots(slots)


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_and_council_toml_set_efforts_and_show_reasoning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "council.toml").write_text('[reasoning_effort]\n"*" = "low"\npopper = "medium"\n')
    with FakeProvider(ANSWER, reasoning=THOUGHT) as fake:
        code, out, err = cli(
            [
                "convene",
                QUESTION,
                "--model",
                "openai/fake",
                "--endpoint",
                f"openai/fake={fake.api_base}",
                "--reasoning-effort",
                "kuhn=high",
                "--out",
                str(tmp_path / "runs"),
                "--quiet",
                "--json",
            ],
            capsys,
        )
        sent = {b["reasoning_effort"] for b in fake.requests}
    assert code == 0, err
    assert sent == {"low", "medium", "high"}
    run_id = json.loads(out)["run_id"]
    code, out, err = cli(
        ["runs", "show", run_id, "--reasoning", "--out", str(tmp_path / "runs")], capsys
    )
    assert code == 0, err
    assert "=== reasoning: opening r0 · kuhn" in out and THOUGHT in out
    code, out, _ = cli(["runs", "show", run_id, "--out", str(tmp_path / "runs")], capsys)
    assert THOUGHT not in out  # shown only on request
    code, _, err = cli(
        ["convene", QUESTION, "--reasoning-effort", "kuhn=lots", "--dry-route"], capsys
    )
    assert code != 0 and "--reasoning-effort kuhn=lots: 'lots' is not one of" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("listening", [False, True], ids=["plain", "streamed"])
def test_reasoning_is_priced_apart_within_the_calls_cost(listening: bool) -> None:
    with FakeProvider(ANSWER, reasoning=THOUGHT) as fake:

        async def endpoint(_: str) -> dict[str, Any]:
            return {"api_base": fake.api_base, "api_key": "k"}

        model = LiteLLMModel("openai/o3-mini", resolve_endpoint=endpoint, max_attempts=1)
        listener = TurnListener(EventList().handle, "r", "s", 0, "kuhn", wants_deltas=listening)
        request = ModelRequest(
            stage="s",
            messages=[{"role": "user", "content": "Well?"}],
            max_tokens=50,
            temperature=1.0,
            listener=listener,
        )
        completion = asyncio.run(model.complete(request))
        assert bool(fake.requests[0].get("stream")) is listening
    # The call's cost from its usage: the prompt and the whole completion at the model's prices.
    prompt_usd, completion_usd = import_litellm().cost_per_token(
        model="openai/o3-mini",
        prompt_tokens=completion.prompt_tokens or 0,
        completion_tokens=completion.completion_tokens or 0,
    )
    assert completion.cost_usd == pytest.approx(prompt_usd + completion_usd)
    tokens = len(THOUGHT.split())
    _, price = import_litellm().cost_per_token(model="openai/o3-mini", completion_tokens=tokens)
    assert completion.reasoning_tokens == tokens and completion.reasoning_cost_usd == price
    assert completion.cost_usd is not None and completion.cost_usd > price > 0
