"""The rules of nyk's SKILL.md v1.2.0 (MIT, 0xNyk) that no step- or ballot-specific test holds:
who the chairman is and what the record says of it, blind round 1, round 2 kept both as the
seats saw it and with names restored, names restored for round 3, and the verdict surfaced as
the chair wrote it. Each is checked on a run of ``high-council`` on a
test double that answers in form (docs/nyk-conformance.md lists the rule each test holds)."""

from __future__ import annotations

import pytest

from council import Council
from council.records.run import RunResult, Turn
from council.records.transcript import render_transcript
from council.seats import ModelRequest
from council.testing import FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Monorepo or polyrepo for our twelve services?"
VERDICT = "## Council Verdict\n\n### Problem\nMonorepo or polyrepo, exactly as the chair wrote it."


def reply(request: ModelRequest) -> str:
    """Each seat signs its replies, so a prompt shows whose words it carries."""
    if request.stage == "verdict":
        return VERDICT
    return well_formed_reply(request).replace(request.seat, f"{request.seat}-says", 1)


@pytest.fixture(scope="module")
def run() -> RunResult:
    council = Council(
        PANEL,
        protocol="high-council",
        model=FunctionModel(reply),
        runs_dir=None,
        similarity="words",
    )
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    return result


def seen(turn: Turn) -> str:
    assert turn.request is not None
    return "\n".join(m["content"] for m in turn.request.messages)


def test_the_chairman_deliberates_in_no_round_and_writes_only_the_verdict(run: RunResult) -> None:
    chairs = {s.seat for s in run.seats if s.role == "chair"}
    assert chairs and not chairs & set(PANEL)
    # VERDICT has one section of nyk's template: council's verdict check asks for it once more.
    assert {t.stage for t in run.turns if t.seat in chairs} == {"verdict", "verdict.reask"}
    assert {t.seat for t in run.turns_in("verdict")} == chairs


def test_the_chairman_and_its_model_are_in_the_verdicts_record(run: RunResult) -> None:
    chair = next(s for s in run.seats if s.role == "chair")
    (verdict,) = run.turns_in("verdict")
    assert verdict.model == chair.model
    provider = chair.model.partition("/")[0]
    assert f"Chairman: chair ({provider} · {chair.model})" in seen(verdict)


def test_the_verdict_is_surfaced_verbatim(run: RunResult) -> None:
    assert run.synthesis == VERDICT
    assert VERDICT in render_transcript(run)


def test_round_one_is_blind_but_for_the_restatements(run: RunResult) -> None:
    for turn in run.turns_in("blind"):
        text = seen(turn)
        others = [seat for seat in PANEL if seat != turn.seat]
        assert all(f"{seat}-says in restate" in text for seat in PANEL)  # every restatement
        assert not any(f"{seat}-says in blind" in text for seat in others)  # no analysis


def test_round_two_is_kept_as_the_seats_saw_it_and_with_names_restored(run: RunResult) -> None:
    for turn in run.turns_in("cross"):
        text = seen(turn)
        assert "Member A" in text  # the record keeps the prompt as it was sent: anonymized
        assert not any(f"{seat}-says" in text for seat in PANEL if seat != turn.seat)
    transcript = render_transcript(run)
    assert all(f"{seat}-says in cross" in transcript for seat in PANEL)  # and by name


def test_names_are_restored_for_round_three_and_the_verdict(run: RunResult) -> None:
    for stage in ("final", "verdict"):
        for turn in run.turns_in(stage):
            text = seen(turn)
            assert all(f"{seat}-says in cross" in text for seat in PANEL if seat != turn.seat)
            assert "Member A" not in text
