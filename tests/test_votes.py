"""Vote parsing on realistic model output, and every tally rule."""

from __future__ import annotations

import pytest

from council.engine.votes import parse_ballot, parse_confidence, tally_votes
from council.protocols.spec import VoteStage

YES_NO = VoteStage(id="vote", kind="vote", prompt="Vote.", options=["yes", "no", "depends"])


def vote(**kwargs) -> VoteStage:  # type: ignore[no-untyped-def]
    return VoteStage(id="vote", kind="vote", prompt="Vote.", **kwargs)


@pytest.mark.parametrize(
    ("reply", "stance", "confidence", "dealbreaker"),
    [
        ("I think so.\nyes | 0.8 | none", "yes", 0.8, None),
        ("**STANCE | CONFIDENCE | DEALBREAKER**\n**No** | 70% | a cheaper transit option", "no", 0.7, "a cheaper transit option"),
        ("Stance: Yes | Confidence: 9/10 | Dealbreaker: evidence of harm", "yes", 0.9, "evidence of harm"),
        ("My vote:\n\n> depends | high | local data\n\nThanks for listening.", "depends", 0.85, "local data"),
        ("yes | 0.6 | none\nOn reflection, I change my mind.\nno | 0.55 | none", "no", 0.55, None),
        ("Yes, strongly | 8 | none", "yes", 0.8, None),
        ("`yes` | .9", "yes", 0.9, None),
    ],
)  # fmt: skip
def test_vote_lines_in_many_shapes(reply, stance, confidence, dealbreaker) -> None:
    ballot = parse_ballot("popper", reply, YES_NO)
    assert ballot.valid, ballot.problem
    assert (ballot.stance, ballot.confidence, ballot.dealbreaker) == (
        stance,
        confidence,
        dealbreaker,
    )


def test_labelled_fields_on_separate_lines() -> None:
    reply = "After thought:\nStance: no\nConfidence: 0.4\nDealbreaker: a pilot that works"
    ballot = parse_ballot("kuhn", reply, YES_NO)
    assert ballot.valid and ballot.stance == "no" and ballot.confidence == 0.4
    assert ballot.problem == "no vote line; read labelled fields"


def test_a_missing_vote_line_falls_back_to_the_last_sentence() -> None:
    ballot = parse_ballot("kuhn", "Long argument here. So my answer is no.", YES_NO)
    assert ballot.valid and ballot.stance == "no" and ballot.confidence == 0.5
    assert "last sentence" in (ballot.problem or "") and "0.5 assumed" in (ballot.problem or "")


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("", "no reply"),
        (None, "no reply"),
        ("I refuse to vote on this.", "no vote line found"),
        ("maybe | 0.5 | none", "stance 'maybe' is not one of yes, no, depends"),
        ("yes and no | 0.5 | none", "is not one of"),
    ],
)
def test_unreadable_votes_are_invalid_ballots_not_errors(reply, problem) -> None:
    ballot = parse_ballot("meadows", reply, YES_NO)
    assert not ballot.valid and problem in (ballot.problem or "")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.75", 0.75),
        ("75%", 0.75),
        ("7.5/10", 0.75),
        ("7", 0.7),
        ("medium", 0.6),
        ("1.0", 1.0),
        ("250", 1.0),
    ],
)
def test_confidence_scales(text, value) -> None:
    assert parse_confidence(text)[0] == pytest.approx(value)


def test_numeric_and_borda_ballots() -> None:
    numeric = vote(numeric=True)
    assert parse_ballot("a", "About 1,200 cars\n~1,200 | 0.6 | none", numeric).value == 1200
    assert not parse_ballot("a", "lots | 0.6 | none", numeric).valid
    borda = vote(options=["tram", "bus", "bike"], rule="borda")
    ballot = parse_ballot("a", "bike > tram > bus | 0.9 | none", borda)
    assert ballot.order == ["bike", "tram", "bus"] and ballot.stance == "bike"
    partial = parse_ballot("a", "Bike, then tram | 0.9 | none", borda)
    assert partial.order == ["bike", "tram"] and "partial ranking" in (partial.problem or "")


def ballots(stage: VoteStage, *replies: str):  # type: ignore[no-untyped-def]
    return [parse_ballot(f"seat{i}", reply, stage) for i, reply in enumerate(replies)]


def test_majority_needs_more_than_half_and_ties_have_no_winner() -> None:
    stage = vote(options=["yes", "no"])
    tally = tally_votes(
        stage, ballots(stage, "yes | 1 | none", "yes | 1 | none", "no | 1 | none", "??")
    )
    assert (tally.winner, tally.agreement, tally.consensus) == ("yes", 0.6667, True)
    assert tally.dissenters == ["seat2"] and tally.invalid == ["seat3"]
    tie = tally_votes(stage, ballots(stage, "yes | 1 | none", "no | 1 | none"))
    assert tie.winner is None and not tie.consensus


def test_supermajority_threshold() -> None:
    stage = vote(options=["yes", "no"], rule="supermajority", threshold=0.75)
    replies = ["yes | 1 | none"] * 2 + ["no | 1 | none"]
    tally = tally_votes(stage, ballots(stage, *replies))
    assert tally.winner == "yes" and not tally.consensus and tally.threshold == 0.75
    tally = tally_votes(stage, ballots(stage, *replies, "yes | 1 | none"))
    assert tally.consensus


def test_confidence_weighting_can_overturn_a_head_count() -> None:
    stage = vote(options=["yes", "no"], rule="confidence_weighted", threshold=0.6)
    tally = tally_votes(
        stage, ballots(stage, "yes | 0.2 | none", "yes | 0.2 | none", "no | 0.9 | none")
    )
    assert tally.winner == "no" and tally.scores == {"no": 0.9, "yes": 0.4}
    assert tally.agreement == pytest.approx(0.6923, abs=1e-4) and tally.consensus


def test_borda_points() -> None:
    stage = vote(options=["tram", "bus", "bike"], rule="borda")
    tally = tally_votes(
        stage,
        ballots(
            stage,
            "tram > bus > bike | 1 | x",
            "bus > tram > bike | 1 | x",
            "tram > bike > bus | 1 | x",
        ),
    )
    assert tally.scores == {"tram": 5.0, "bus": 3.0, "bike": 1.0}
    assert tally.winner == "tram" and tally.agreement == pytest.approx(0.6667, abs=1e-4)


def test_numeric_tally_reports_median_and_spread() -> None:
    stage = vote(numeric=True, rule="supermajority", threshold=0.75, tolerance=0.1)
    tally = tally_votes(
        stage, ballots(stage, "100 | 1 | x", "104 | 1 | x", "96 | 1 | x", "300 | 1 | x")
    )
    assert tally.winner == "102" and tally.rule == "median"
    assert (
        tally.scores["median"] == 102 and tally.scores["min"] == 96 and tally.scores["max"] == 300
    )
    assert tally.agreement == 0.75 and tally.consensus and tally.dissenters == ["seat3"]


def test_no_valid_ballot_means_no_winner() -> None:
    tally = tally_votes(YES_NO, ballots(YES_NO, "", "nothing to say"))
    assert tally.winner is None and tally.invalid == ["seat0", "seat1"] and not tally.consensus
