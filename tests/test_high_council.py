"""The high-council protocols: nyk's modes with their rules enforced. Each gate is seen firing
and not firing, the verdict carries its sections and every dealbreaker, and a real council
runs on the bundled model."""

from __future__ import annotations

import pytest
from nyk_verdicts import FULL

from council import Council, SamplingSettings
from council.records.run import RunResult
from council.seats import ModelRequest
from council.testing import FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should the city move its buses to a monorepo of timetables?"


def run(reply, protocol: str = "high-council", panel=PANEL) -> RunResult:  # type: ignore[no-untyped-def]
    council = Council(
        panel, protocol=protocol, model=FunctionModel(reply), runs_dir=None, similarity="words"
    )
    return council.convene(QUESTION)


def gate(result: RunResult, name: str, stage: str):  # type: ignore[no-untyped-def]
    return next(g for g in result.gates if g.gate == name and g.stage == stage)


def test_high_council_runs_end_to_end_on_the_test_doubles() -> None:
    result = run(well_formed_reply)
    assert result.status == "completed", result.error
    stages = [t.stage for t in result.turns]
    for stage in ("restate", "blind", "cross", "counterfactual", "dissent", "final", "verdict"):
        assert stage in stages, stage
    assert not gate(result, "novelty", "cross").fired
    assert not gate(result, "evidence-monoculture", "cross").fired
    # Everyone agrees (80% > 70%): the two seats most likely to dissent argue against it.
    assert len(result.turns_in("counterfactual")) == 2
    final = next(t for t in result.tallies if t.stage == "final")
    # No member's domain shares a word with the question: no seat weighs 1.5, W_total is 3.
    assert final.rule == "confidence_weighted" and final.denominator == 3.0
    assert result.metadata is not None and result.metadata.mode == "high-council"
    # The blind round read the restatements: they are in its prompts.
    blind = result.turns_in("blind")[0]
    assert blind.request is not None and "restate (round 0)" in blind.request.messages[1]["content"]


def test_the_novelty_gate_sends_a_repeated_reply_back_once() -> None:
    def reply(request: ModelRequest) -> str:
        if request.seat == "kuhn" and request.stage in ("blind", "cross"):
            if "repeats your earlier answer" in request.messages[-1]["content"]:
                return "Answering the challenge: the schedule data says otherwise."
            return "Paradigms shift when anomalies pile up; this plan ignores that entirely."
        return well_formed_reply(request)

    result = run(reply)
    novelty = gate(result, "novelty", "cross")
    assert novelty.fired and novelty.seats == ["kuhn"] and "kuhn 1.00" in novelty.reason
    again = [t for t in result.turns if t.stage == "cross.reask"]
    assert [t.seat for t in again] == ["kuhn"]
    assert again[0].request is not None
    challenge = again[0].request.messages[-1]["content"]
    assert "answer the sharpest challenge" in challenge and "> " in challenge
    # Later stages read the new reply, not the repeated one.
    final = result.turns_in("final")[0]
    assert final.request is not None
    assert "the schedule data says otherwise" in final.request.messages[1]["content"]


def test_evidence_labels_note_a_monoculture_and_a_mix() -> None:
    def tagged(kinds: list[str]):  # type: ignore[no-untyped-def]
        def reply(request: ModelRequest) -> str:
            if request.stage == "cross":
                assert "[empirical]" in request.messages[-1]["content"]  # the instruction
                return " ".join(f"Claim {i} [{kind}]." for i, kind in enumerate(kinds))
            return well_formed_reply(request)

        return reply

    mono = gate(run(tagged(["strategic"] * 5)), "evidence-monoculture", "cross")
    assert mono.fired and "100% of 15 tagged claims are strategic" in mono.reason
    mixed = gate(
        run(tagged(["strategic", "empirical", "ethical"])), "evidence-monoculture", "cross"
    )
    assert not mixed.fired and "strategic 3" in mixed.reason


def test_no_counterfactual_when_the_council_really_disagrees() -> None:
    stances = {"popper": "yes", "kuhn": "no", "meadows": "depends"}

    def reply(request: ModelRequest) -> str:
        if request.expects == "vote":
            return (
                f"My reason.\nSTANCE: {stances[request.seat]} | CONFIDENCE: high | DEALBREAKER: no"
            )
        return well_formed_reply(request)

    result = run(reply)
    assert "counterfactual" not in [t.stage for t in result.turns]
    assert any(s.startswith("counterfactual:") for s in result.skipped)
    final = next(t for t in result.tallies if t.stage == "final")
    assert final.split and not final.consensus


def test_the_verdict_asks_for_every_section_and_carries_every_dealbreaker() -> None:
    def reply(request: ModelRequest) -> str:
        if request.expects == "vote":
            deal = "yes" if request.seat == "kuhn" else "no"
            stance = "no" if request.seat == "kuhn" else "yes"
            return f"Because.\nSTANCE: {stance} | CONFIDENCE: high | DEALBREAKER: {deal}"
        return well_formed_reply(request)

    result = run(reply)
    verdict = result.turns_in("verdict")[0]
    assert verdict.request is not None
    prompt = verdict.request.messages[1]["content"]
    for heading in FULL:
        assert f"\n### {heading}\n" in prompt, heading
    # The outvoted dealbreaker reaches the chair, with what it means.
    assert "Dealbreakers (the opposing option is actively harmful" in prompt
    assert "kuhn (Thomas S. Kuhn) (backs no)" in prompt


def test_quick_and_duo_modes_run() -> None:
    quick = run(well_formed_reply, "high-council-quick")
    assert quick.status == "completed" and [t.stage for t in quick.turns][-1] == "verdict"
    duo = run(well_formed_reply, "high-council-duo", ["popper", "kuhn"])
    assert duo.status == "completed" and not duo.tallies  # dialectic: no vote (nyk)


@pytest.mark.local_model
def test_high_council_on_the_bundled_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    council = Council(
        PANEL,
        protocol="high-council",
        runs_dir=tmp_path,
        sampling=SamplingSettings(temperature=0.7, seed=5, max_tokens=48),
    )
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    assert {g.gate for g in result.gates} == {
        "restatement",
        "novelty",
        "evidence-monoculture",
        "dissent_quota",
        "anti_recursion",
    }
    final = next(t for t in result.tallies if t.stage == "final")
    # W_total is the base weights: 3, or 3.5 when a member's domain stood out (its 1.5x seat).
    assert final.denominator == sum(final.weights.get(seat, 1.0) for seat in PANEL)
    assert final.denominator in (3.0, 3.5) and len(final.ballots) == 3
    assert result.synthesis
