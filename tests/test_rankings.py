"""Ranking parsing on realistic, malformed model output, and the aggregate."""

from __future__ import annotations

from council.engine.rankings import parse_ranking, tally_rankings
from council.protocols.spec import RankingStage

BALLOT = {"Response A": "popper", "Response C": "meadows", "Response D": "taleb"}
STAGE = RankingStage(id="review", kind="ranking", prompt="Rank.", sees=["answers"])


def parse(text: str | None):  # type: ignore[no-untyped-def]
    return parse_ranking("kuhn", text, BALLOT, own="Response B")


def test_a_clean_ranking() -> None:
    ballot = parse(
        "Response A is thin.\n\nFINAL RANKING:\n1. Response C\n2. Response A\n3. Response D"
    )
    assert ballot.order == ["meadows", "popper", "taleb"] and ballot.problems == []


def test_labels_before_the_marker_are_commentary() -> None:
    text = "Response D is best written, Response A weakest.\nFinal ranking:\n1) Response A\n2) Response D\n3) Response C"
    assert parse(text).order == ["popper", "taleb", "meadows"]


def test_missing_marker_reads_the_whole_reply() -> None:
    ballot = parse("I prefer Response D, then Response C, and Response A last.")
    assert ballot.order == ["taleb", "meadows", "popper"]
    assert "no FINAL RANKING marker" in ballot.problems[0]


def test_self_ranking_unknown_labels_duplicates_and_gaps() -> None:
    text = "FINAL RANKING:\n1. Response B\n2. Response Z\n3. Response C\n4. Response C\n5. **Response A**"
    ballot = parse(text)
    assert ballot.order == ["meadows", "popper"]
    assert ballot.problems == [
        "ranked itself (Response B); ignored",
        "unknown label Response Z; ignored",
        "left out Response D",
    ]


def test_nothing_rankable() -> None:
    assert not parse("").valid and parse("").problems == ["no reply"]
    ballot = parse("FINAL RANKING: they are all good")
    assert not ballot.valid and "no valid label ranked" in ballot.problems


def test_aggregate_average_place_with_borda_tiebreak() -> None:
    ballots = [
        parse_ranking(
            "kuhn", "FINAL RANKING:\n1. Response C\n2. Response A\n3. Response D", BALLOT, None
        ),
        parse_ranking(
            "hayek", "FINAL RANKING:\n1. Response A\n2. Response C\n3. Response D", BALLOT, None
        ),
        parse_ranking("keynes", "FINAL RANKING:\n1. Response C\n2. Response D", BALLOT, None),
        parse_ranking("smith", "no idea", BALLOT, None),
    ]
    tally = tally_rankings(STAGE, ballots)
    assert list(tally.scores) == ["meadows", "popper", "taleb"]
    assert tally.scores == {"meadows": 1.3333, "popper": 1.5, "taleb": 2.6667}
    assert tally.winner == "meadows" and tally.invalid == ["smith"]
    assert tally.agreement == 0.6667  # two of three valid ballots put meadows first
