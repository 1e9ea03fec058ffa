"""council's mechanical checks of the chair's verdict (council/engine/verdict_checks.py): every
required section present and filled, the tally's outcome stated, every dealbreaker named, the
length within limits; one re-ask, then ``unchecked`` with reasons and its own exit status.
And the honest end of a run on the bundled model. Runs go through ``FunctionModel`` where a
test reads what the chair was sent, ``FakeProvider`` (real litellm calls) end to end."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.cli.main import main
from council.cli.output import EXIT_VERDICT_UNCHECKED, REAL_MODEL_COMMAND, report_run
from council.cli.progress import ProgressDisplay
from council.engine.verdict_checks import (
    VerdictFacts,
    stated_outcomes,
    template_headings,
    verdict_problems,
)
from council.protocols import compile_protocol
from council.records.record import utc_now
from council.records.run import RunResult, Tally, Turn
from council.seats import ModelRequest
from council.seats.local import DEFAULT_LOCAL_MODEL
from council.testing import FakeProvider, FunctionModel, well_formed_reply, well_formed_verdict

PANEL = ["popper", "kuhn", "meadows"]
QUICK = [
    "Problem",
    "Panel",
    "Chairman",
    "Recommended Action",
    "Kill Criteria",
    "Concrete Next Step",
    "Positions",
    "Consensus",
    "Vote Tally",
    "Key Disagreement",
    "Follow-Up",
]  # fmt: skip  (Acceptable Compromises is marked optional)


def convene(
    reply: Callable[[ModelRequest], str],
    protocol: Any = "high-council-quick",
    *,
    model: str = "test/function",
    **kwargs: Any,
) -> RunResult:
    council = Council(
        PANEL,
        protocol=protocol,
        model=FunctionModel(reply, model=model),
        runs_dir=None,
        similarity="words",
        **kwargs,
    )
    return council.convene("Monorepo or polyrepo?")


def chair_writes(*verdicts: str) -> Callable[[ModelRequest], str]:
    """Seats reply well formed; the chair writes ``verdicts`` in turn (the last one again)."""
    said: list[str] = []

    def reply(request: ModelRequest) -> str:
        if request.kind != "synthesis":
            return well_formed_reply(request)
        said.append(request.stage)
        return verdicts[min(len(said), len(verdicts)) - 1] or well_formed_reply(request)

    return reply


# -- the checks, one by one ----------------------------------------------------------------


def test_a_verdict_with_every_section_and_the_outcome_passes_at_once() -> None:
    result = convene(well_formed_reply)
    assert result.status == "completed", result.error
    check = result.verdict_check
    assert check is not None and check.status == "checked" and not check.reasked
    assert not result.turns_in("verdict.reask")
    assert (
        result.metadata is not None and "verdict_check" not in result.metadata.enforcement_breakdown
    )
    assert "- Verdict: checked" in result.transcript()


def test_required_sections_are_the_templates_deepest_headings_less_optional_ones() -> None:
    result = convene(well_formed_reply)
    verdict = result.turns_in("verdict")[0]
    assert verdict.request is not None
    headings = template_headings(verdict.request.messages[1]["content"].rsplit("\n---\n")[-1])
    assert "Quick Council Verdict" not in headings  # the title, a level above
    assert [h for h in headings if "(optional)" not in h] == QUICK


def sold_run() -> RunResult:
    return convene(chair_writes("Sold!", ""))  # "": the well-formed verdict on the re-ask


def test_a_one_word_verdict_is_asked_for_once_more_and_fixed() -> None:
    result = sold_run()
    check = result.verdict_check
    assert check is not None and check.status == "checked" and check.reasked
    assert check.first_reasons[0] == "missing sections: " + ", ".join(QUICK)
    assert check.first_reasons[1].startswith("outcome: not stated; the tally's is consensus")
    again = result.turns_in("verdict.reask")
    assert [t.seat for t in again] == ["chair"]
    assert again[0].request is not None
    instruction = again[0].request.messages[-1]["content"]
    assert "### Acceptable Compromises (optional)" in instruction and "### Follow-Up" in instruction
    assert "State the vote's outcome as the tally gives it: consensus" in instruction
    assert again[0].request.messages[-2] == {"role": "assistant", "content": "Sold!"}
    assert result.synthesis == again[0].content  # the re-asked verdict replaces the first
    assert result.metadata is not None
    assert result.metadata.enforcement_breakdown["verdict_check"] == 1
    assert "checked, when asked once more (the first fell short: missing sections" in (
        result.transcript()
    )


def unchecked_run() -> RunResult:
    return convene(chair_writes("Sold!"))


def test_a_verdict_still_short_when_asked_again_is_recorded_unchecked_with_reasons() -> None:
    result = unchecked_run()
    assert result.status == "completed"  # the run completed; its verdict is marked, not lost
    check = result.verdict_check
    assert check is not None and check.status == "unchecked" and check.reasked
    assert check.reasons == check.first_reasons and len(check.reasons) == 2
    assert len(result.turns_in("verdict.reask")) == 1  # asked once, never twice
    transcript = result.transcript()
    assert "- Verdict: unchecked, still short when asked once more: missing sections" in transcript
    assert "> **Verdict unchecked.** Asked once more, it still lacks:" in transcript
    assert "Verdict:</b> unchecked" in result._repr_html_()  # the web page's transcript


def test_an_unchecked_verdict_survives_the_record(tmp_path: Path) -> None:
    from council.store import load_run

    council = Council(
        PANEL,
        protocol="high-council-quick",
        model=FunctionModel(chair_writes("Sold!")),
        runs_dir=tmp_path,
        similarity="words",
    )
    result = council.convene("Monorepo or polyrepo?")
    loaded = load_run(result.run_id, tmp_path)
    assert loaded.verdict_check == result.verdict_check
    assert loaded.verdict_check is not None and loaded.verdict_check.status == "unchecked"


def test_the_live_display_and_the_report_say_unchecked_and_exit_4(capsys) -> None:
    lines = io.StringIO()
    from rich.console import Console

    display = ProgressDisplay(console=Console(file=lines, width=200))
    result = convene(chair_writes("Sold!"), sinks=[display])
    assert "verdict unchecked (asked once more): missing sections: Problem" in lines.getvalue()
    assert report_run(result, as_json=False) == EXIT_VERDICT_UNCHECKED == 4
    out, err = capsys.readouterr()
    assert "[Verdict unchecked: missing sections: Problem" in out
    assert "council: verdict unchecked (asked once more): missing sections" in err


def tally(outcome: str, winner: str | None = None, dealbreaker: str | None = None) -> Tally:
    from council.records.run import Ballot

    ballots = [Ballot(seat="kuhn", valid=True, stance="poly", dealbreaker=dealbreaker)]
    return Tally(
        stage="final",
        kind="vote",
        rule="confidence_weighted",
        outcome=outcome,  # type: ignore[arg-type]
        winner=winner,
        consensus=outcome == "consensus",
        ballots=ballots,
        dealbreaker="harmful",
    )


def verdict_turn(text: str, **fields: Any) -> Turn:
    return Turn(
        run_id="r",
        stage="verdict",
        seat="chair",
        persona="chair",
        provider="test",
        model="test/function",
        content=text,
        latency_s=0.0,
        started_at=utc_now(),
        **fields,
    )


@pytest.mark.parametrize(
    ("text", "stated"),
    [
        ("No consensus reached: the split goes to you.", {"split"}),
        ("The council did not reach a consensus.", {"split"}),
        ("The two-thirds consensus was not reached.", {"split"}),
        ("Consensus: mono carries with 2.5 of 3.", {"consensus"}),
        ("The council reached consensus on mono.", {"consensus"}),
        (
            "Inconclusive: too many ballots went uncounted. No consensus reached.",
            {"inconclusive", "split"},
        ),
        ("Consensus & Agreement: the members agreed on tests first.", set()),
        ("The council converged on mono: it carries with 2.5 of 3.", {"consensus"}),
        ("mono led but did not clear the threshold; no option carries.", {"split"}),
    ],
)
def test_outcome_statements_are_read_from_words(text: str, stated: set[str]) -> None:
    assert stated_outcomes(text) == stated


def test_the_stated_outcome_must_be_the_tallys() -> None:
    facts = VerdictFacts(tally=tally("split"))
    problems = verdict_problems(verdict_turn("Consensus reached: ship it."), facts)
    assert problems == [
        "outcome: it states consensus; the tally's is split (no option cleared "
        "the threshold: no consensus reached)"
    ]
    assert verdict_problems(verdict_turn("No consensus reached; it goes to you."), facts) == []
    inconclusive = VerdictFacts(tally=tally("inconclusive"))
    assert (
        verdict_problems(verdict_turn("Split, and inconclusive: ballots lost."), inconclusive) == []
    )
    assert (
        "the tally's is inconclusive" in verdict_problems(verdict_turn("Split."), inconclusive)[0]
    )


def test_the_questions_words_and_the_options_state_no_outcome() -> None:
    split_wins = tally("consensus", "split").model_copy(update={"scores": {"split": 2.0}})
    facts = VerdictFacts(tally=split_wins, question="Should we split the repo?")
    text = "Should we split the repo? The council says split: it carries, a consensus."
    assert verdict_problems(verdict_turn(text), facts) == []


def test_the_outcome_is_read_in_the_consensus_section_where_there_is_one() -> None:
    facts = VerdictFacts(sections=["Problem", "Consensus"], tally=tally("consensus", "mono"))
    text = "### Problem\nShould we split the repo?\n### Consensus\nmono carries (consensus)."
    assert verdict_problems(verdict_turn(text), facts) == []


def test_every_dealbreaker_is_named_by_any_name_of_its_seat() -> None:
    facts = VerdictFacts(
        tally=tally("split", dealbreaker="yes"), names={"kuhn": ["kuhn", "Thomas Kuhn", "Kuhn"]}
    )
    assert verdict_problems(verdict_turn("No consensus reached."), facts) == [
        "dealbreakers not named: kuhn"
    ]
    assert verdict_problems(verdict_turn("Split. Thomas Kuhn holds poly harmful."), facts) == []
    # On the council scale a dealbreaker is what would change the seat's mind: not checked.
    reversal = tally("split", dealbreaker="ridership falls").model_copy(
        update={"dealbreaker": "reversal"}
    )
    assert (
        verdict_problems(verdict_turn("No consensus reached."), VerdictFacts(tally=reversal)) == []
    )


def test_a_dealbreaker_left_out_of_a_real_run_is_asked_for() -> None:
    def reply(request: ModelRequest) -> str:
        if request.kind == "vote" and request.seat == "kuhn":
            return "Because.\nSTANCE: polyrepo | CONFIDENCE: high | DEALBREAKER: yes"
        text = well_formed_reply(request)
        if request.kind == "synthesis" and request.stage == "verdict":  # first: leave kuhn out
            return "\n".join(line for line in text.splitlines() if "Dealbreakers" not in line)
        return text

    result = convene(reply)
    check = result.verdict_check
    assert check is not None and check.first_reasons == ["dealbreakers not named: kuhn"]
    assert check.status == "unchecked"  # the double leaves kuhn out again
    instruction = result.turns_in("verdict.reask")[0].request.messages[-1]["content"]  # type: ignore[union-attr]
    assert "Name every member who held a dealbreaker: kuhn." in instruction


SECTIONS_PROTOCOL = """\
name: listed
description: a synthesis that lists its sections and a word limit
stages:
  - {id: opening, kind: statement, prompt: "Answer {{ question }}"}
  - id: verdict
    kind: synthesis
    sees: [opening]
    words: 12
    sections: [Verdict, Dissent]
    prompt: "Write Verdict and Dissent."
"""


def test_listed_sections_may_be_bold_labels_and_the_word_limit_holds() -> None:
    protocol = compile_protocol(SECTIONS_PROTOCOL, Path("listed.yaml"))
    ok = "**Verdict:** ship it.\n**Dissent**: none."
    long = "**Verdict:** " + "very " * 20 + "good.\n**Dissent**: none."
    passed = convene(chair_writes(ok), protocol=protocol)
    assert passed.verdict_check is not None and passed.verdict_check.status == "checked"
    failed = convene(chair_writes("Verdict only.", long), protocol=protocol)
    check = failed.verdict_check
    assert check is not None and check.first_reasons == ["missing sections: Verdict, Dissent"]
    assert check.status == "unchecked" and check.reasons == [
        "length: 24 words, over the limit of 12"
    ]


def test_a_verdict_council_assembled_itself_is_recorded_unchecked_and_not_reasked() -> None:
    from council.base.errors import ModelCallError

    def reply(request: ModelRequest) -> str:
        if request.seat == "chair":
            raise ModelCallError("chair down", retryable=False, attempts=1)
        return well_formed_reply(request)

    result = convene(reply)
    assert result.metadata is not None and result.metadata.chairman_failed_fallback
    # Nothing checked a verdict no model wrote; the record says so rather than saying nothing.
    check = result.verdict_check
    assert check is not None and check.status == "unchecked" and not check.reasked
    assert "chair's model failed (chair down)" in check.reasons[0]
    assert not result.turns_in("verdict.reask")


# -- through litellm and the command line --------------------------------------------------


def sold_to_the_chair(body: dict[str, Any]) -> str:
    """A fake provider's reply: a vote line when asked for one, "Sold!" for the verdict."""
    last = body["messages"][-1]["content"]
    if "Quick Council Verdict" in last or "falls short" in last:
        return "Sold!"
    if "high|med|low" in last:
        return "Because it is simpler.\nSTANCE: monorepo | CONFIDENCE: high | DEALBREAKER: no"
    return "An argument long enough to be read as an argument."


def test_convene_exits_4_when_the_verdict_is_unchecked(tmp_path: Path, capsys) -> None:
    with FakeProvider(sold_to_the_chair) as fake:
        code = main(
            [
                "convene",
                "Monorepo or polyrepo?",
                "--personas",
                "popper,kuhn",
                "--protocol",
                "high-council-quick",
                "--model",
                "openai/fake",
                "--endpoint",
                f"openai/fake={fake.api_base}",
                "--out",
                str(tmp_path),
                "--attempts",
                "1",
                "--quiet",
            ]
        )
        assert fake.request_count == 2 + 2 + 1 + 1  # two rounds, the verdict, its re-ask
    out, err = capsys.readouterr()
    assert code == EXIT_VERDICT_UNCHECKED
    assert out.startswith("Sold!") and "[Verdict unchecked: missing sections: Problem" in out
    assert "council: verdict unchecked (asked once more)" in err


def sold_then_fixed(body: dict[str, Any]) -> str:
    """The chair writes "Sold!", then, told what is missing, the verdict in full."""
    if "falls short" in body["messages"][-1]["content"]:
        return well_formed_verdict(body["messages"], "Fixed.")
    return sold_to_the_chair(body)


def test_convene_exits_0_when_the_re_asked_verdict_passes(tmp_path: Path, capsys) -> None:
    with FakeProvider(sold_then_fixed) as fake:
        code = main(
            [
                "convene",
                "Monorepo or polyrepo?",
                "--personas",
                "popper,kuhn",
                "--protocol",
                "high-council-quick",
                "--model",
                "openai/fake",
                "--endpoint",
                f"openai/fake={fake.api_base}",
                "--out",
                str(tmp_path),
                "--attempts",
                "1",
                "--quiet",
                "--json",
            ]
        )
        assert fake.request_count == 6
    run = json.loads(capsys.readouterr().out)
    assert code == 0 and run["verdict_check"]["status"] == "checked"
    assert run["verdict_check"]["reasked"] and run["synthesis"].startswith("### Problem\nFixed.")


# -- the honest end of a run on the bundled model ------------------------------------------


def test_a_run_on_the_bundled_model_ends_with_the_tally_the_note_and_the_command(capsys) -> None:
    result = convene(well_formed_reply, model=DEFAULT_LOCAL_MODEL)
    assert {seat.model for seat in result.seats} == {DEFAULT_LOCAL_MODEL}
    assert report_run(result, as_json=False) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert (
        out[-1]
        == f"Seat a real model: {REAL_MODEL_COMMAND} (council models lists what is reachable)."
    )
    assert out[-2] == (
        f"Note: {DEFAULT_LOCAL_MODEL} (135M parameters) is an offline stand-in that "
        "runs with no key: expect generic, sometimes broken prose, not advice."
    )
    tally_at = next(i for i, line in enumerate(out) if line.startswith("Vote tally"))
    assert any("carries (consensus)" in line for line in out[tally_at:-2])
    assert "Run folder" in "\n".join(out[:tally_at])


def test_a_run_on_another_model_gets_no_note(capsys) -> None:
    assert report_run(convene(well_formed_reply), as_json=False) == 0
    out = capsys.readouterr().out
    assert "Vote tally" in out and "stand-in" not in out and "Seat a real model" not in out
