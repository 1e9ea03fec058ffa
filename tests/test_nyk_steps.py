"""nyk's SKILL.md v1.2.0 (MIT, 0xNyk), rule for rule: the full, quick and duo sequences run
their steps in order and never merged, round 2 goes one seat after another for panels of 4 or
fewer, the STEP 4 enforcement rules (dissent quota, agreement check, hemlock rule) each fire and
stand down and are counted under nyk's tags, a divergent restatement is flagged to the user,
quick mode's anonymization cannot be switched off, and duo mode never votes. The last test
runs nyk's own agents folder, imported unchanged, through all three modes on the fake provider.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from council import Council
from council.base.errors import ConfigError
from council.cli.main import main
from council.cli.progress import ProgressDisplay
from council.protocols.library import find_protocol
from council.records.events import (
    Event,
    EventList,
    GateChecked,
    StageFinished,
    StageSkipped,
    StageStarted,
    TurnFinished,
    TurnStarted,
)
from council.records.run import RunResult, Turn
from council.records.transcript import render_transcript
from council.seats import ModelRequest
from council.testing import FakeProvider, FunctionModel, well_formed_reply, well_formed_verdict

PANEL = ["popper", "kuhn", "meadows"]
FOUR = [*PANEL, "socrates"]
FIVE = [*FOUR, "hayek"]
QUESTION = "Should the city move its buses to a monorepo of timetables?"
NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"
FULL_STEPS = [
    ["restate"],
    ["blind"],
    ["cross"],
    ["counterfactual", "dissent", "hemlock"],
    ["final"],
    ["verdict"],
]
Reply = Callable[[ModelRequest], str]


def convene(
    reply: Reply, protocol: str = "high-council", panel: list[str] = PANEL, **options: object
) -> tuple[RunResult, list[Event]]:
    events = EventList()
    council = Council(
        panel,
        protocol=protocol,
        model=FunctionModel(reply),
        runs_dir=None,
        similarity="words",
        sinks=[events],
        **options,
    )  # type: ignore[arg-type]
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    return result, events.events


def line(stance: str, text: str) -> str:
    """A reply ending in nyk's stance line (its STEP 5 form, which council reads too)."""
    return f"{text}\nSTANCE: {stance} | CONFIDENCE: high | DEALBREAKER: no"


def voting(stances: dict[str, str], texts: dict[str, str] | None = None) -> Reply:
    """Seats vote these stances in every vote stage; ``texts`` gives their round 2 replies."""

    def reply(request: ModelRequest) -> str:
        if request.expects != "vote":
            return well_formed_reply(request)
        text = (texts or {}).get(request.seat, f"{request.seat} argues in {request.stage}.")
        return line(stances.get(request.seat, "agree"), text)

    return reply


def prompt(turn: Turn) -> str:
    assert turn.request is not None
    return turn.request.messages[-1]["content"]


def said(turn: Turn) -> str:
    """The prompt with its lines joined, to find a phrase a line break may split."""
    return " ".join(prompt(turn).split())


def gate(result: RunResult, name: str, stage: str):  # type: ignore[no-untyped-def]
    return next(g for g in result.gates if g.gate == name and g.stage == stage)


def spans(events: list[Event]) -> dict[str, tuple[int, int]]:
    """Stage -> (first event, last event) of it, its asked-again turns included."""
    found: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if isinstance(event, (StageStarted | StageFinished | StageSkipped, TurnStarted)):
            stage = event.stage
        elif isinstance(event, TurnFinished):
            stage = event.turn.stage
        else:
            continue
        found.setdefault(stage.split(".")[0], []).append(index)
    return {stage: (min(at), max(at)) for stage, at in found.items()}


# -- the order of the steps ----------------------------------------------------------------


def test_full_mode_steps_run_in_order_and_no_step_starts_before_the_last_ends() -> None:
    result, events = convene(well_formed_reply)
    span = spans(events)
    for earlier, later in itertools.pairwise(FULL_STEPS):
        assert max(span[s][1] for s in earlier) < min(span[s][0] for s in later), (earlier, later)
    assert result.stages == [s for step in FULL_STEPS for s in step]


def test_quick_and_duo_steps_run_in_order() -> None:
    for protocol, panel, steps in (
        ("high-council-quick", PANEL, ["blind", "final", "verdict"]),
        ("high-council-duo", ["popper", "kuhn"], ["theses", "reply", "final", "verdict"]),
    ):
        result, events = convene(well_formed_reply, protocol, panel)
        span = spans(events)
        assert result.stages == steps
        assert all(span[a][1] < span[b][0] for a, b in itertools.pairwise(steps))


def test_every_stage_cites_the_step_it_implements_in_its_title_and_a_comment() -> None:
    for name in ("high-council", "high-council-quick", "high-council-duo"):
        protocol = find_protocol(name)
        lines = protocol.text.splitlines()
        for stage in protocol.speaking_stages():
            if stage.id == "verdict":
                continue  # the chair's verdict is written apart (its template)
            step = re.match(r"((?:QUICK |DUO )?STEP [0-9.]+)", stage.label)
            assert step, (name, stage.id, stage.label)
            at = lines.index(f"  - id: {stage.id}")
            comment = []
            while lines[at - 1 - len(comment)].startswith("  # "):
                comment.append(lines[at - 1 - len(comment)])
            assert step.group(1) in " ".join(comment), (name, stage.id)


def test_word_limits_are_nyks_on_every_stage_and_not_in_the_prompts() -> None:
    limits = {
        "high-council": {
            "restate": 50,
            "blind": 400,
            "cross": 300,
            "dissent": 150,
            "hemlock": 50,
            "final": 100,
        },
        "high-council-quick": {"blind": 200, "final": 75},
        "high-council-duo": {"theses": 300, "reply": 200, "final": 50},
    }
    for name, words in limits.items():
        protocol = find_protocol(name)
        for stage_id, limit in words.items():
            stage = protocol.stage(stage_id)
            assert getattr(stage, "words", None) == limit, (name, stage_id)
            assert not re.search(r"\d+ words", getattr(stage, "prompt", "")), (name, stage_id)


# -- round 2: anonymized, sequential up to 4 seats -----------------------------------------


def _before_yours(text: str) -> list[str]:
    """The labels of the round 2 replies shown as given before this seat's."""
    if "replies before yours" not in text:
        return []
    section = text.split("replies before yours", 1)[1].split("\n---\n", 1)[0]
    return re.findall(r"^### (Member \w+)", section, re.MULTILINE)


def test_round_two_goes_one_seat_after_another_for_four_seats_still_anonymized() -> None:
    result, events = convene(well_formed_reply, panel=FOUR)
    labels = {seat.seat: seat.anonymous_label for seat in result.seats}
    cross = {t.seat: t for t in result.turns_in("cross")}
    for place, seat in enumerate(FOUR):
        shown = _before_yours(prompt(cross[seat]))
        assert shown == sorted(labels[s] for s in FOUR[:place]), seat
        assert not any(
            name in prompt(cross[seat]).split("replies before yours")[-1] for name in FOUR[:place]
        )
    started = [i for i, e in enumerate(events) if isinstance(e, TurnStarted) and e.stage == "cross"]
    finished = [
        i for i, e in enumerate(events) if isinstance(e, TurnFinished) and e.turn.stage == "cross"
    ]
    assert all(f < s for f, s in zip(finished, started[1:], strict=False))  # one after another


def test_round_two_is_parallel_for_five_seats() -> None:
    result, _ = convene(well_formed_reply, panel=FIVE)
    cross = result.turns_in("cross")
    assert len(cross) == 5 and not any(_before_yours(prompt(t)) for t in cross)
    assert all(prompt(t).count("### Member") == 4 for t in cross)  # round 1 only, anonymized


def test_round_two_carries_the_anti_conformity_directive_and_nyks_four_items() -> None:
    result, _ = convene(well_formed_reply)
    text = said(result.turns_in("cross")[0])
    for phrase in (
        "Identity is masked",
        "Anti-conformity directive",
        "1. Which member's",
        "2. Which member's insight",
        "3. Restate your position",
        "4. Label your key claims",
        "engage at least 2 other members by label",
        "[empirical]",
    ):
        assert phrase.lower() in text.lower(), phrase


# -- STEP 4: dissent quota, agreement check, hemlock rule ----------------------------------


def test_dissent_quota_fires_when_no_one_objects_and_asks_those_who_agreed() -> None:
    result, _ = convene(well_formed_reply)  # everyone backs "agree"
    quota = gate(result, "dissent_quota", "dissent")
    assert quota.fired and sorted(quota.seats) == sorted(PANEL)
    assert "0 non-overlapping objection(s)" in quota.reason
    asked = result.turns_in("dissent")
    assert sorted(t.seat for t in asked) == sorted(PANEL)
    assert "State your strongest objection to the majority position" in said(asked[0])
    # The agreement check is its own rule: the counterfactual goes to two seats only.
    assert len(result.turns_in("counterfactual")) == 2
    assert "Assume the current consensus is wrong" in said(result.turns_in("counterfactual")[0])
    assert result.metadata is not None
    fired = {tag: n for tag, n in result.metadata.enforcement_breakdown.items() if n}
    assert fired == {"agreement_check": 2, "dissent_quota": 3}


def test_dissent_quota_holds_with_two_distinct_objections_and_no_agreement_check_below_70() -> None:
    stances = {"popper": "yes", "kuhn": "no", "meadows": "wait", "socrates": "yes", "hayek": "yes"}
    texts = {
        "kuhn": "Ridership data shows the merge strands night routes.",
        "meadows": "The feedback loop between depots and planners would break.",
    }
    result, _ = convene(voting(stances, texts), panel=FIVE)
    quota = gate(result, "dissent_quota", "dissent")
    assert not quota.fired and "2 non-overlapping objection(s)" in quota.reason
    assert "quota met" in quota.reason
    assert not result.turns_in("dissent") and not result.turns_in("counterfactual")  # 60%
    assert result.metadata is not None and result.metadata.enforcement_breakdown == {}


def test_overlapping_objections_count_once_for_the_dissent_quota() -> None:
    stances = {"popper": "yes", "kuhn": "no", "meadows": "no", "socrates": "yes", "hayek": "yes"}
    same = "Ridership data shows the merge strands night routes."
    result, _ = convene(voting(stances, {"kuhn": same, "meadows": same}), panel=FIVE)
    quota = gate(result, "dissent_quota", "dissent")
    assert quota.fired and "1 non-overlapping objection(s)" in quota.reason
    assert sorted(t.seat for t in result.turns_in("dissent")) == ["hayek", "popper", "socrates"]


ASKED = "What do we mean by a monorepo of timetables?"


def _socrates(again: str) -> Reply:
    def reply(request: ModelRequest) -> str:
        if request.seat == "socrates" and request.stage == "blind":
            return f"Before anything else. {ASKED}"
        if request.seat == "socrates" and request.stage == "cross":
            return line("agree", f"Still unclear to me. {again}")
        return well_formed_reply(request)

    return reply


def test_hemlock_rule_forces_a_position_when_the_questioner_reasks_an_answered_question() -> None:
    result, _ = convene(_socrates(ASKED), panel=["popper", "kuhn", "socrates"])
    hemlock = gate(result, "anti_recursion", "hemlock")
    assert hemlock.fired and hemlock.seats == ["socrates"] and ASKED in hemlock.reason
    forced = result.turns_in("hemlock")
    assert [t.seat for t in forced] == ["socrates"]
    assert "hemlock rule" in said(forced[0]) and ASKED in said(forced[0])
    assert find_protocol("high-council").stage("hemlock").words == 50  # type: ignore[union-attr]
    assert (
        result.metadata is not None and result.metadata.enforcement_breakdown["anti_recursion"] == 1
    )


def test_hemlock_rule_stands_down_for_a_new_question_or_without_a_questioner() -> None:
    result, _ = convene(
        _socrates("Who pays when a route is dropped?"), panel=["popper", "kuhn", "socrates"]
    )
    assert not gate(result, "anti_recursion", "hemlock").fired
    assert not result.turns_in("hemlock")
    plain, _ = convene(well_formed_reply)
    assert "no questioner on the panel" in gate(plain, "anti_recursion", "hemlock").reason


def test_the_questioner_alone_is_given_exactly_one_question_in_round_three() -> None:
    result, _ = convene(well_formed_reply, panel=["popper", "kuhn", "socrates"])
    final = {t.seat: said(t) for t in result.turns_in("final")}
    assert "exactly ONE question" in final["socrates"]
    assert "exactly ONE question" not in final["popper"]
    assert all("No new arguments" in text for text in final.values())


# -- STEP 1.5: divergent restatements are flagged to the user ------------------------------


def test_a_restatement_far_from_the_question_is_flagged_in_transcript_and_live_display() -> None:
    def reply(request: ModelRequest) -> str:
        if request.stage == "restate":
            if request.seat == "kuhn":
                return "Which pizza topping deserves a referendum?"
            return "Whether the city should keep its bus timetables in one monorepo."
        return well_formed_reply(request)

    result, _ = convene(reply)
    flag = gate(result, "restatement", "restate")
    assert flag.fired and flag.seats == ["kuhn"] and flag.threshold == 0.2
    assert "framing issue" in flag.reason
    assert "Gate restatement in restate" in render_transcript(result)
    console = Console(record=True, force_terminal=False, width=200, file=io.StringIO())
    ProgressDisplay(console).handle(GateChecked(run_id=result.run_id, note=flag))
    assert "flag: restatement far from the question (kuhn" in console.export_text()
    calm, _ = convene(
        lambda r: (
            "The city weighs moving bus timetables to a monorepo."
            if r.stage == "restate"
            else well_formed_reply(r)
        )
    )
    assert not gate(calm, "restatement", "restate").fired


# -- switches: deliberate differences off, anonymization locked in quick mode -------------


def test_quick_mode_anonymization_cannot_be_switched_off(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="switch 'anonymize' cannot be turned off: nyk: quick"):
        Council(
            PANEL,
            protocol="high-council-quick",
            model=FunctionModel(well_formed_reply),
            runs_dir=None,
            switches={"anonymize": False},
        )
    argv = [
        "convene",
        "Q?",
        "--protocol",
        "high-council-quick",
        "--switch",
        "anonymize=off",
        "--dry-route",
    ]
    assert main(argv) == 2
    assert "conformity-prone" in capsys.readouterr().err


def test_the_anonymize_switch_reveals_names_where_a_protocol_does_not_lock_it() -> None:
    result, _ = convene(well_formed_reply, switches={"anonymize": False})
    text = prompt(next(t for t in result.turns_in("cross") if t.seat == "popper"))
    assert "### kuhn (Thomas S. Kuhn)" in text and "### Member" not in text


def test_quick_mode_keeps_the_restatement_and_anonymized_anti_conformity_round() -> None:
    result, _ = convene(well_formed_reply, "high-council-quick")
    assert "in ONE sentence, restate this problem" in said(result.turns_in("blind")[0])
    final = next(t for t in result.turns_in("final") if t.seat == "kuhn")
    text = prompt(final)
    assert "Anti-conformity directive" in text and "### Member" in text
    assert "popper" not in text and "meadows" not in text  # the others are labels only


def test_round_two_stance_switch_off_runs_nyks_prompt_alone_and_says_the_checks_did_not_run() -> (
    None
):
    result, _ = convene(well_formed_reply, switches={"round2_stance": False})
    cross = result.turns_in("cross")
    assert all(t.request is not None and t.request.expects == "text" for t in cross)
    assert "STANCE" not in prompt(cross[0])
    assert not [t for t in result.tallies if t.stage == "cross"]
    skipped = " ".join(result.skipped)
    assert "counterfactual: no tally from 'cross'" in skipped
    assert "dissent: no tally from 'cross'" in skipped
    with pytest.raises(ConfigError, match="has no switch 'round3_stance'"):
        Council(PANEL, protocol="high-council", runs_dir=None, switches={"round3_stance": False})


# -- duo: dialectic, not decision-issuing --------------------------------------------------


def test_duo_has_no_vote_no_anonymization_and_a_fifty_word_final_with_no_new_arguments() -> None:
    protocol = find_protocol("high-council-duo")
    assert not any(s.collects_votes for s in protocol.speaking_stages())
    assert not any(s.anonymize for s in protocol.speaking_stages())
    final = protocol.stage("final")
    assert final.kind == "response" and getattr(final, "words", None) == 50
    result, _ = convene(well_formed_reply, "high-council-duo", ["popper", "kuhn"])
    assert not result.tallies
    assert "No new arguments" in said(result.turns_in("final")[0])
    reply = next(t for t in result.turns_in("reply") if t.seat == "popper")
    assert "### kuhn (Thomas S. Kuhn)" in prompt(reply)  # the opponent, by name
    assert "in ONE sentence, restate this problem" in said(result.turns_in("theses")[0])


# -- nyk's own agents, imported unchanged, through all three modes -------------------------


def _fake_reply(body: dict) -> str:  # type: ignore[type-arg]
    """A member of nyk's council on the fake provider: it answers what it is asked, and ends
    with the stance line when the engine asks for one."""
    asked = body["messages"][-1]["content"]
    text = "The timetable merge concentrates risk; I would test it on one depot first."
    if re.search(r"^## .*Verdict$", body["messages"][1]["content"], re.MULTILINE):
        return well_formed_verdict(body["messages"], text)  # the chair, in nyk's template
    return line("pilot first", text) if "STANCE" in asked else text


@pytest.mark.parametrize(
    ("protocol", "members", "steps"),
    [
        ("high-council", "council-socrates,council-feynman,council-ada",
         [s for step in FULL_STEPS for s in step]),
        ("high-council-quick", "council-aristotle,council-ada,council-feynman",
         ["blind", "final", "verdict"]),
        ("high-council-duo", "council-torvalds,council-musashi",
         ["theses", "reply", "final", "verdict"]),
    ],
)  # fmt: skip
def test_nyks_agents_run_every_mode_to_completion_with_every_step_in_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    protocol: str,
    members: str,
    steps: list[str],
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "personas"
    assert main(["personas", "import", str(NYK), "--to", str(folder)]) == 0
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(folder))
    capsys.readouterr()
    with FakeProvider(_fake_reply) as fake:
        argv = [
            "convene",
            QUESTION,
            "--protocol",
            protocol,
            "--personas",
            members,
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--out",
            str(tmp_path / "runs"),
            "--json",
            "--quiet",
        ]
        assert main(argv) == 0, capsys.readouterr().err
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "completed" and run["stages"] == steps
    ran = [t["stage"].split(".")[0] for t in run["turns"]]
    assert [s for s in dict.fromkeys(ran)] == [s for s in steps if s in ran]
    first = {t["seat"]: t for t in run["turns"] if t["stage"] in ("blind", "theses")}
    if protocol == "high-council":
        socrates = " ".join(first["council-socrates"]["request"]["messages"][-1]["content"].split())
        assert "Reason via your designated method: dialectical questioning" in socrates
        finals = {
            t["seat"]: " ".join(t["request"]["messages"][-1]["content"].split())
            for t in run["turns"]
            if t["stage"] == "final"
        }
        assert "exactly ONE question" in finals["council-socrates"]
        assert "exactly ONE question" not in finals["council-ada"]
        assert run["metadata"]["enforcement_breakdown"]["dissent_quota"] == 3  # all three agreed
