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
        ("My vote:\n\n> depends | high | local data\n\nThanks for listening.", "depends", 1.0, "local data"),
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
        ("medium", 0.75),
        ("med", 0.75),
        ("low", 0.5),
        ("high", 1.0),
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
    # The unreadable ballot counts in the denominator: 2 of 4 is not more than half; had it
    # said yes, 3 of 4 would be: the vote is inconclusive, not split.
    assert (tally.winner, tally.agreement, tally.consensus) == ("yes", 0.5, False)
    assert tally.dissenters == ["seat2"] and tally.invalid == ["seat3"]
    assert tally.outcome == "inconclusive" and not tally.split
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
    # 0.9 of the 3 seats' base weight: the winner, but far from consensus.
    assert tally.agreement == 0.3 and not tally.consensus and tally.split


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


CONFIDENCE_WEIGHTED = vote(options=["yes", "no", "depends"], rule="confidence_weighted")


def test_two_low_confidence_yes_and_an_unreadable_ballot_are_not_consensus() -> None:
    tally = tally_votes(
        CONFIDENCE_WEIGHTED,
        ballots(CONFIDENCE_WEIGHTED, "yes | low | none", "yes | low | none", "I refuse to say."),
    )
    assert tally.winner == "yes" and tally.denominator == 3.0
    assert tally.agreement == pytest.approx(1 / 3, abs=1e-4) and not tally.consensus
    # Had the unreadable seat said yes at full confidence, 2.0 of 3 would clear 2/3.
    assert tally.outcome == "inconclusive" and tally.invalid == ["seat2"]


def test_two_of_three_equal_votes_meet_two_thirds_exactly() -> None:
    for threshold in (2 / 3, 0.667):  # 0.667 is read as the 2/3 it stands for
        stage = vote(options=["yes", "no"], rule="confidence_weighted", threshold=threshold)
        tally = tally_votes(
            stage, ballots(stage, "yes | high | none", "yes | high | none", "no | high | none")
        )
        assert tally.consensus and not tally.split, threshold


def test_a_domain_seat_and_one_confident_seat_pass_a_denominator_of_three_and_a_half() -> None:
    stage = CONFIDENCE_WEIGHTED
    replies = ["yes | high | none", "yes | high | none", "no | high | none"]
    weights = {"seat0": 1.5}
    tally = tally_votes(stage, ballots(stage, *replies), weights=weights)
    assert tally.denominator == 3.5 and tally.scores == {"yes": 2.5, "no": 1.0}
    assert tally.consensus  # 2.5 >= 2/3 x 3.5
    weaker = tally_votes(
        stage,
        ballots(stage, "yes | high | none", "yes | low | none", "no | high | none"),
        weights=weights,
    )
    assert weaker.scores["yes"] == 2.0 and not weaker.consensus  # 2.0 < 2.333


def test_abstain_is_a_stance_that_counts_in_the_denominator() -> None:
    stage = CONFIDENCE_WEIGHTED
    tally = tally_votes(
        stage, ballots(stage, "yes | high | none", "yes | high | none", "Pass | high | none")
    )
    assert tally.abstained == ["seat2"] and tally.dissenters == []
    assert tally.denominator == 3.0 and tally.consensus  # 2 of 3


@pytest.mark.parametrize(
    ("reply", "stance"),
    [
        ("I side with the proposal.\n**Agreed.** | 80% | a cost overrun", "yes"),
        ("Stance: Strongly oppose\nConfidence: med\nDealbreaker: none", None),
        ("NO!!! | 9/10 | none", "no"),
        ("> _It depends_ | 0.6 | the budget", "depends"),
        ("We cannot know yet.\nAbstain | 1 | none", "abstain"),
        ("Nay | low | none", "no"),
    ],
)
def test_messy_stances_are_normalised(reply: str, stance: str | None) -> None:
    ballot = parse_ballot("kuhn", reply, CONFIDENCE_WEIGHTED)
    if stance is None:  # "strongly oppose" names no option: invalid, and said so
        assert not ballot.valid and "not one of" in (ballot.problem or "")
    else:
        assert ballot.valid and ballot.stance == stance, ballot


def test_free_stances_fold_case_punctuation_and_synonyms() -> None:
    free = vote(rule="confidence_weighted")
    tally = tally_votes(
        free,
        ballots(free, "Monorepo. | high | none", "monorepo | med | x", "Polyrepo! | high | none"),
    )
    assert tally.scores == {"monorepo": 1.75, "polyrepo": 1.0}
    assert tally.ballots[0].raw_stance == "Monorepo" and tally.ballots[0].stance == "monorepo"


def test_a_split_reports_each_option_with_its_strongest_argument() -> None:
    stage = CONFIDENCE_WEIGHTED
    tally = tally_votes(
        stage,
        ballots(
            stage,
            "Trams last fifty years.\nyes | high | none",
            "Buses can change routes.\nno | high | none",
            "It hinges on funding.\ndepends | med | none",
        ),
    )
    assert (tally.split and not tally.consensus and tally.winner is None) or tally.split
    assert tally.arguments == {
        "yes": "Trams last fifty years.",
        "no": "Buses can change routes.",
        "depends": "It hinges on funding.",
    }


def test_a_missing_stance_line_is_asked_for_once_and_recorded() -> None:
    from council import Council
    from council.testing import FunctionModel

    asked: list[str] = []

    def reply(request):  # type: ignore[no-untyped-def]
        if request.expects != "vote":
            return "An argument."
        asked.append(request.seat)
        if request.seat == "kuhn" and asked.count("kuhn") == 1:
            return "I would rather not reduce this to a line."  # no vote line
        return "yes | high | none"

    protocol = "full-council"
    result = Council(
        ["popper", "kuhn", "meadows"], protocol=protocol, model=FunctionModel(reply), runs_dir=None
    ).convene("Q?")
    assert asked.count("kuhn") == 2 and asked.count("popper") == 1  # once more, kuhn only
    reask = [t for t in result.turns if t.stage == "vote.reask"]
    assert [t.seat for t in reask] == ["kuhn"] and reask[0].request is not None
    assert reask[0].request.messages[-2]["content"] == "I would rather not reduce this to a line."
    assert "Reply with that one line only" in reask[0].request.messages[-1]["content"]
    tally = result.tallies[0]
    kuhn = next(b for b in tally.ballots if b.seat == "kuhn")
    assert kuhn.valid and kuhn.reasked and kuhn.stance == "yes" and tally.consensus


def test_free_stances_that_mean_the_same_merge_by_the_bundled_embedder() -> None:
    from council.app.choosing import embedding_similarity

    similarity = embedding_similarity()
    assert similarity is not None
    free = vote(rule="confidence_weighted")
    replies = [
        "Raise taxes | high | none",
        "raise taxes | high | none",
        "Increase taxes | high | none",
        "Cut spending | high | none",
    ]
    tally = tally_votes(free, ballots(free, *replies), similarity=similarity)
    assert tally.scores == {"raise taxes": 3.0, "cut spending": 1.0}
    assert tally.merged == {"Increase taxes": "raise taxes"}  # case alone is no merge
    assert tally.consensus  # 3 of 4 >= 2/3
    words = tally_votes(free, ballots(free, *replies))  # without the embedder: no such merge
    assert words.scores == {"raise taxes": 2.0, "increase taxes": 1.0, "cut spending": 1.0}


def test_a_free_stance_is_a_few_words_not_prose() -> None:
    free = vote(rule="confidence_weighted")
    prose = (
        "that is a good one that is a great answer here is the response to it in three "
        "words stance | 0.5 | none"
    )
    ballot = parse_ballot("keynes", prose, free)
    assert not ballot.valid and "not a position in a few words" in (ballot.problem or "")
    assert parse_ballot("keynes", "Build the tram line first | high | none", free).valid
