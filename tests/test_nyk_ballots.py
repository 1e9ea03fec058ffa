"""nyk's ballots, tally, verdicts and fallbacks, rule for rule (SKILL.md v1.2.0 STEP 5 to 8 and
its Output Templates): each test names the rule it holds. Runs go through the test doubles:
``FunctionModel`` where a test reads what a seat was sent, ``FakeProvider`` (real litellm calls
over loopback HTTP) where a model has to fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nyk_verdicts import DUO, FULL, QUICK

from council import Council
from council.base.errors import ModelCallError, ProtocolError
from council.engine.votes import parse_ballot, tally_votes, vote_instruction
from council.protocols import compile_protocol, find_protocol
from council.protocols.ballots import NYK_SCALE, ballot_scale
from council.protocols.spec import VoteStage
from council.records.describe import describe_tally, session_block
from council.records.run import RunResult
from council.records.settings import CallSettings
from council.seats import ModelRequest
from council.seats.model import ChatModel, Completion
from council.seats.routing import chair_fallback
from council.testing import FakeProvider, FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
NYK = VoteStage(id="final", kind="vote", prompt="Vote.", rule="confidence_weighted", ballot="nyk")


def line(stance: str, confidence: str = "high", dealbreaker: str = "no") -> str:
    return f"STANCE: {stance} | CONFIDENCE: {confidence} | DEALBREAKER: {dealbreaker}"


def nyk_tally(votes: dict[str, str], weights: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    ballots = [parse_ballot(seat, f"My reason.\n{text}", NYK) for seat, text in votes.items()]
    return tally_votes(NYK, ballots, weights=weights)


def convene(
    reply: Callable[[ModelRequest], str],
    protocol: str = "high-council-quick",
    panel: list[str] = PANEL,
    **kwargs: Any,
) -> RunResult:
    council = Council(
        panel,
        protocol=protocol,
        model=FunctionModel(reply),
        runs_dir=None,
        similarity="words",
        **kwargs,
    )
    return council.convene("Monorepo or polyrepo?")


# -- STEP 5: the ballot line ---------------------------------------------------------------


def test_nyk_confidence_levels_weigh_1_075_05() -> None:
    for word, factor in (("high", 1.0), ("med", 0.75), ("Medium", 0.75), ("low", 0.5)):
        ballot = parse_ballot("ada", f"Because.\n{line('monorepo', word)}", NYK)
        assert ballot.valid and ballot.confidence == factor, word
        assert ballot.confidence_label == NYK_SCALE.level(word)
    tally = nyk_tally({"a": line("x", "high"), "b": line("x", "med"), "c": line("x", "low")})
    assert tally.scores == {"x": 2.25}  # 1.0 + 0.75 + 0.5 of W_total 3


def test_nyk_confidence_that_is_not_a_level_is_unreadable_never_assumed_half() -> None:
    for text in (
        "STANCE: x | CONFIDENCE: 0.8 | DEALBREAKER: no",
        "STANCE: x | DEALBREAKER: no",
        "STANCE: x",
    ):
        ballot = parse_ballot("ada", text, NYK)
        assert not ballot.valid and "is not one of high|med|low" in (ballot.problem or ""), text


def test_nyk_dealbreaker_yes_means_the_opposing_option_is_harmful() -> None:
    instruction = vote_instruction(NYK)
    assert "STANCE: <option> | CONFIDENCE: high|med|low | DEALBREAKER: yes|no" in instruction
    assert "actively harmful, not merely sub-optimal" in instruction
    assert "STANCE: abstain" in instruction and "same words as peers" in instruction
    assert parse_ballot("a", line("x", dealbreaker="yes"), NYK).dealbreaker == "yes"
    assert parse_ballot("a", line("x", dealbreaker="no"), NYK).dealbreaker is None
    # The council scale's meaning ("what would change your mind") is no yes/no: unreadable.
    reversal = parse_ballot("a", line("x", dealbreaker="ridership falls"), NYK)
    assert not reversal.valid and "is not yes or no" in (reversal.problem or "")


def test_nyk_never_reads_a_stance_from_prose() -> None:
    options = NYK.model_copy(update={"options": ["yes", "no"]})
    assert not parse_ballot("a", "Long argument. So my answer is yes.", options).valid
    council = options.model_copy(update={"ballot": "council"})  # the default scale still may
    assert parse_ballot("a", "Long argument. So my answer is yes.", council).stance == "yes"


def test_one_scale_gives_the_instruction_and_the_json_schema() -> None:
    schema = NYK_SCALE.json_schema(None, numeric=False, ranked=False)
    fields = schema["properties"]
    assert fields["confidence"]["enum"] == ["high", "med", "low"]
    assert fields["dealbreaker"]["enum"] == ["yes", "no"]
    assert "actively harmful" in fields["dealbreaker"]["description"]
    assert schema["required"] == ["stance", "confidence", "dealbreaker"]
    number = ballot_scale("council").json_schema(["a", "b"], numeric=False, ranked=False)
    assert number["properties"]["confidence"]["maximum"] == 1
    assert number["properties"]["stance"]["enum"] == ["a", "b", "abstain"]


def test_the_protocol_declares_its_ballot_scale_and_a_stage_may_override_it() -> None:
    for name in ("high-council", "high-council-quick", "high-council-duo"):
        protocol = find_protocol(name)
        assert protocol.spec.ballot == "nyk"
        votes = [s for s in protocol.speaking_stages() if isinstance(s, VoteStage)]
        assert all(s.ballot == "nyk" for s in votes), name
        assert bool(votes) == (name != "high-council-duo")  # the duo has no vote: the user decides
    assert find_protocol("full-council").stage("vote").ballot == "council"  # others keep theirs
    text = (
        "name: p\ndescription: d\nballot: nyk\nstages:\n"
        "  - {id: a, kind: vote, prompt: x, ballot: council}\n"
        "  - {id: b, kind: vote, prompt: x}\n"
        "  - {id: s, kind: synthesis, sees: [a, b], prompt: x}\n"
    )
    protocol = compile_protocol(text, Path("p.yaml"))
    assert (protocol.stage("a").ballot, protocol.stage("b").ballot) == ("council", "nyk")


def test_an_unknown_ballot_scale_is_one_line_naming_file_line_and_field() -> None:
    text = (
        "name: p\ndescription: d\nballot: nyc\nstages:\n"
        "  - {id: s, kind: synthesis, prompt: x, sees: [s]}\n"
    )
    with pytest.raises(ProtocolError) as caught:
        compile_protocol(text, Path("p.yaml"))
    message = str(caught.value)
    assert "p.yaml:3" in message and "ballot" in message and "unknown ballot scale 'nyc'" in message
    assert "\n" not in message


def test_missing_stance_is_reasked_not_inferred() -> None:
    asked: list[ModelRequest] = []

    def reply(request: ModelRequest) -> str:
        if request.expects == "vote" and request.seat == "kuhn":
            asked.append(request)
            if len(asked) == 1:
                return "Paradigms shift. So my answer is monorepo."  # prose, no line
            return line("monorepo", "med")
        return well_formed_reply(request)

    result = convene(reply)
    again = [t for t in result.turns if t.stage == "final.reask"]
    assert [t.seat for t in again] == ["kuhn"] and len(asked) == 2
    assert again[0].request is not None
    instruction = again[0].request.messages[-1]["content"]
    assert "Reply with that one line only" in instruction and "high|med|low" in instruction
    tally = next(t for t in result.tallies if t.stage == "final")
    kuhn = next(b for b in tally.ballots if b.seat == "kuhn")
    assert kuhn.valid and kuhn.reasked and kuhn.confidence_label == "med"
    assert result.metadata is not None
    assert result.metadata.enforcement_breakdown["missing_stance"] == 1


def test_a_stance_still_missing_after_the_reask_is_uncounted_not_guessed() -> None:
    def reply(request: ModelRequest) -> str:
        if request.expects == "vote" and request.seat == "kuhn":
            return "I will not reduce this to a line. Clearly agree."
        return well_formed_reply(request)

    result = convene(reply)
    tally = next(t for t in result.tallies if t.stage == "final")
    assert tally.invalid == ["kuhn"] and tally.denominator == 3.0
    # 2.0 of 3 clears 2/3 even without kuhn: consensus stands.
    assert tally.consensus and tally.outcome == "consensus"


# -- STEP 6: the tally ---------------------------------------------------------------------

ADA_FEYNMAN_TORVALDS = {
    "ada": line("monorepo", "high"),
    "feynman": line("monorepo", "med"),
    "torvalds": line("polyrepo", "high"),
}


def test_tally_names_the_domain_seat_factors_and_threshold() -> None:
    tally = nyk_tally(ADA_FEYNMAN_TORVALDS, weights={"ada": 1.5})  # nyk's own example
    assert tally.scores == {"monorepo": 2.25, "polyrepo": 1.0}
    assert tally.denominator == 3.5 and tally.needed == pytest.approx(2.3333, abs=1e-4)
    assert tally.weights == {"ada": 1.5, "feynman": 1.0, "torvalds": 1.0}
    assert not tally.consensus and tally.outcome == "split"
    text = describe_tally(tally, {})
    assert (
        "- monorepo — 2.25 (ada [1.5× domain, high], feynman [med → 0.75]) — did not "
        "clear the 2.333 threshold"
    ) in text
    assert "- polyrepo — 1.0 (torvalds [high])" in text
    assert "W_total 3.5 · threshold 2/3 → 2.333 · **no option carries**" in text
    assert "escalated to the user" in text and "Domain-weight seat: ada (1.5×)" in text


def test_tally_without_a_domain_seat_says_so() -> None:
    text = describe_tally(nyk_tally(ADA_FEYNMAN_TORVALDS), {})
    assert "No seat carried 1.5× (no domain-weight seat)." in text
    assert "W_total 3.0 · threshold 2/3 → 2.0" in text


def test_the_domain_seat_and_one_confident_seat_carry_the_triad() -> None:
    votes = {**ADA_FEYNMAN_TORVALDS, "feynman": line("monorepo", "high")}
    tally = nyk_tally(votes, weights={"ada": 1.5})
    assert tally.scores["monorepo"] == 2.5 and tally.consensus and tally.winner == "monorepo"
    assert "cleared the 2.333 threshold" in describe_tally(tally, {})
    assert "**monorepo carries** (consensus)" in describe_tally(tally, {})


def test_w_total_is_base_weights_so_a_hesitant_council_cannot_make_consensus() -> None:
    tally = nyk_tally({s: line("ship", "low") for s in ("a", "b", "c")})
    assert tally.scores == {"ship": 1.5} and tally.denominator == 3.0
    assert not tally.consensus and tally.outcome == "split"  # unanimous, but 1.5 < 2.0


def test_abstain_counts_toward_w_total_at_full_base_weight() -> None:
    tally = nyk_tally(
        {"a": line("ship"), "b": line("ship", "med"), "c": line("abstain")}, weights={"c": 1.5}
    )
    assert tally.abstained == ["c"] and tally.denominator == 3.5
    assert tally.scores == {"ship": 1.75} and not tally.consensus  # 1.75 < 2.333
    assert "Abstained (counted in W_total at full base weight): c." in describe_tally(tally, {})


def test_an_exact_tie_is_reported_as_a_live_split() -> None:
    tally = nyk_tally({"a": line("mono"), "b": line("poly"), "c": line("abstain")})
    assert tally.winner is None and tally.tied == ["mono", "poly"]
    assert tally.outcome == "split" and not tally.consensus
    assert "mono and poly tie, a live split" in describe_tally(tally, {})


def test_inconclusive_when_uncounted_ballots_could_have_decided() -> None:
    tally = nyk_tally({"a": line("ship"), "b": line("ship", "med"), "c": "no line at all"})
    # 1.75 does not clear 2.0, but had c backed ship at high, 2.75 would have.
    assert tally.invalid == ["c"] and tally.outcome == "inconclusive" and not tally.split
    assert "**inconclusive**" in describe_tally(tally, {})
    split = nyk_tally({"a": line("ship", "low"), "b": line("wait", "low"), "c": "no line"})
    assert split.outcome == "split"  # 0.5 + 1.0 < 2.0: c could not have made either carry


def test_a_seat_absent_since_an_earlier_failure_stays_in_w_total() -> None:
    def reply(request: ModelRequest) -> str:
        if request.seat == "kuhn":
            raise ModelCallError("provider down", retryable=False, attempts=1)
        return well_formed_reply(request)

    result = convene(reply)
    tally = next(t for t in result.tallies if t.stage == "final")
    assert tally.denominator == 3.0 and tally.invalid == ["kuhn"]
    kuhn = next(b for b in tally.ballots if b.seat == "kuhn")
    assert "absent" in (kuhn.problem or "")
    assert result.outcome == tally.outcome == "consensus"  # 2.0 of 3 clears 2/3


def test_the_chair_sees_the_tally_and_the_transcript_shows_it() -> None:
    stances = {
        "popper": line("mono", "high"),
        "kuhn": line("poly", "med", "yes"),
        "meadows": line("mono", "low"),
    }

    def reply(request: ModelRequest) -> str:
        if request.expects == "vote":
            return f"My reason.\n{stances[request.seat]}"
        return well_formed_reply(request)

    result = convene(reply, weights={"kuhn": 1.5})
    verdict = result.turns_in("verdict")[0]
    assert verdict.request is not None
    prompt = verdict.request.messages[1]["content"]
    assert (
        "- mono — 1.5 (popper (Karl Popper) [high], meadows (Donella H. Meadows) [low → "
        "0.5]) — did not clear the 2.333 threshold" in prompt
    )
    assert "kuhn (Thomas S. Kuhn) [1.5× domain, med → 1.125]" in prompt
    assert "Dealbreakers (the opposing option is actively harmful" in prompt
    transcript = result.transcript()
    assert "- poly — 1.125 (kuhn [1.5× domain, med → 1.125])" in transcript
    assert "- Outcome of the vote: split" in transcript


# -- STEP 7: the verdict templates ---------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "panel", "title", "sections"),
    [
        ("high-council", PANEL, "## Council Verdict", FULL),
        ("high-council-quick", PANEL, "## Quick Council Verdict", QUICK),
        ("high-council-duo", ["popper", "kuhn"], "## Duo Verdict", DUO),
    ],
)
def test_each_mode_asks_for_nyks_verdict_sections_in_order(
    protocol: str, panel: list[str], title: str, sections: list[str]
) -> None:
    result = convene(well_formed_reply, protocol, panel)
    assert result.status == "completed", result.error
    request = result.turns_in("verdict")[0].request
    assert request is not None
    prompt = request.messages[1]["content"]
    template = prompt[prompt.index(title) :]
    found = [h[4:] for h in template.splitlines() if h.startswith("### ")]
    assert found == sections
    words = " ".join(template.split())
    assert "do not add, remove or rename sections" in " ".join(prompt.split())
    assert "N/A — <reason>" in prompt and '"<verb> <object> by <date>."' in words
    assert "If <X> observed by <date>," in words
    assert ("Vote Tally" in found) is (protocol != "high-council-duo")  # duo: the user decides
    stage = find_protocol(protocol).stage("verdict")
    assert stage.label.split(":")[0] in ("STEP 7", "QUICK STEP 3", "DUO STEP 4")


def test_kill_criteria_keep_nyks_form() -> None:
    for name in ("high-council", "high-council-quick"):
        prompt = " ".join(find_protocol(name).stage("verdict").prompt.split())
        assert (
            '"If <X> observed by <date>, the verdict is invalidated and we should <Y>."' in prompt
        )


def test_the_chair_card_defers_to_the_stage_template() -> None:
    card = (Path(__file__).parent.parent / "personas" / "chair.md").read_text()
    assert "exactly these sections" not in card
    assert "When the stage's prompt gives a verdict template, it governs" in card
    assert 'write "N/A — " and the reason' in card


# -- fallbacks (STEP 2 and STEP 7) ---------------------------------------------------------


def votes_for_nyk(body: dict[str, Any]) -> str:
    """A fake provider's reply: nyk's line when asked for one, an argument otherwise."""
    last = body["messages"][-1]["content"]
    if "high|med|low" in last:
        return "Because it is simpler.\n" + line("monorepo")
    return "An argument long enough to be read as an argument."


@pytest.fixture
def good() -> Iterator[FakeProvider]:
    with FakeProvider(votes_for_nyk) as fake:
        yield fake


@pytest.fixture
def down() -> Iterator[FakeProvider]:
    with FakeProvider(error_rates={401: 1.0}) as fake:  # refused: never retried
        yield fake


def provider_council(
    good: FakeProvider, down: FakeProvider, calls: CallSettings | None = None, **kwargs: Any
) -> Council:
    endpoints = {
        m: good.api_base for m in ("openai/good", "openai/gemini-good", "openai/llama-good")
    }
    endpoints |= {"openai/down": down.api_base, "openai/claude-down": down.api_base}
    return Council(
        PANEL,
        protocol="high-council-quick",
        model="openai/good",
        endpoints=endpoints,
        runs_dir=None,
        similarity="words",
        calls=calls or CallSettings(max_attempts=1),
        **kwargs,
    )


def test_failed_seat_stays_on_its_fallback(good: FakeProvider, down: FakeProvider) -> None:
    council = provider_council(
        good, down, seats={"kuhn": "openai/down"}, fallbacks={"kuhn": ["openai/good"]}
    )
    result = council.convene("Monorepo or polyrepo?")
    assert result.status == "completed", result.error
    assert down.request_count == 1  # tried once, in the first round only: then skipped
    kuhn = [t for t in result.turns if t.seat == "kuhn"]
    assert len(kuhn) == 2 and all(t.model == "openai/good" and t.ok for t in kuhn)
    meta = result.metadata
    assert meta is not None and meta.fallbacks_triggered == ["kuhn->openai/good"]
    assert meta.fallback_log == [
        "[FALLBACK] kuhn failed on openai/down. Falling back to openai/good."
    ]
    assert "`[FALLBACK] kuhn failed on openai/down." in result.transcript()
    assert "fallbacks_triggered: kuhn->openai/good" in session_block(meta)
    assert not meta.chairman_failed_fallback


def test_a_failed_chair_falls_back_to_a_model_of_another_family(
    good: FakeProvider, down: FakeProvider
) -> None:
    pool = ["openai/llama-good", "openai/gemini-good"]
    council = provider_council(good, down, seats={"chair": "openai/claude-down"}, models=pool)
    assert "falls back to openai/llama-good" in council.chair.reason  # on by default
    result = council.convene("Monorepo or polyrepo?")
    assert result.status == "completed", result.error
    assert result.turns_in("verdict")[0].model == "openai/llama-good"
    meta = result.metadata
    assert meta is not None and meta.chairman_failed_fallback
    assert meta.fallbacks_triggered == ["chair->openai/llama-good"]
    assert "chairman_failed_fallback: yes" in session_block(meta)


def test_failed_chair_falls_back_to_tally_verdict(good: FakeProvider, down: FakeProvider) -> None:
    council = provider_council(good, down, seats={"chair": "openai/down"})
    result = council.convene("Monorepo or polyrepo?")
    assert result.status == "completed", result.error
    verdict = result.turns_in("verdict")[0]
    assert verdict.ok and verdict.model == "council/tally-verdict"
    synthesis = result.synthesis or ""
    assert "Assembled by council, not written by a model" in synthesis
    assert "Chairman: chair (FAILED — synthesized by coordinator fallback)" in synthesis
    assert "**Vote tally** (confidence_weighted, ballot nyk)" in synthesis
    assert "monorepo carries" in synthesis
    meta = result.metadata
    assert meta is not None and meta.chairman_failed_fallback
    assert meta.fallbacks_triggered == ["chair->council/tally-verdict"]


def test_with_chair_fallback_off_a_failed_chair_fails_the_run(
    good: FakeProvider, down: FakeProvider
) -> None:
    pool = ["openai/llama-good", "openai/gemini-good"]
    off = CallSettings(max_attempts=1, chair_fallback=False)
    council = provider_council(good, down, off, seats={"chair": "openai/claude-down"}, models=pool)
    assert "falls back" not in (council.chair.reason or "")  # no other family offered
    result = council.convene("Monorepo or polyrepo?")
    assert result.status == "failed"  # neither the pool's model nor the tally's verdict
    assert all(t.model != "council/tally-verdict" for t in result.turns)


def test_chair_fallback_prefers_a_family_off_the_panel() -> None:
    pool = ["openai/gpt-4o", "anthropic/claude-x", "gemini/gemini-y"]
    assert chair_fallback(pool, "openai/gpt-4o", ["anthropic/claude-z"]) == "gemini/gemini-y"
    assert (
        chair_fallback(pool, "openai/gpt-4o", ["anthropic/c", "gemini/g"]) == "anthropic/claude-x"
    )
    assert chair_fallback(["openai/a", "openai/b"], "openai/a", []) is None


# -- STEP 8: session metadata --------------------------------------------------------------


class Counting(ChatModel):
    """Answers in form and reports token use, so the metadata has numbers to add up."""

    model = "test/counting"

    async def complete(self, request: ModelRequest) -> Completion:
        return Completion(
            content=well_formed_reply(request), prompt_tokens=100, completion_tokens=10
        )


def test_session_metadata_has_nyks_fields_and_block() -> None:
    result = Council(
        PANEL, protocol="high-council", model=Counting(), runs_dir=None, similarity="words"
    ).convene("Monorepo or polyrepo?")
    meta = result.metadata
    assert meta is not None and meta.schema_version == 1 and meta.panel_size == 3
    calls = len([t for t in result.turns])
    assert meta.input_tokens == 100 * calls and meta.output_tokens == 10 * calls
    assert meta.provider_count == 1 and not meta.tools_used and meta.fallbacks_triggered == []
    # Everyone agrees: the agreement check sends the counterfactual to two seats, and with no
    # objection the dissent quota asks all three who agreed; each counted under nyk's tag.
    assert meta.enforcement_calls == 5 and meta.enforcement_breakdown["agreement_check"] == 2
    assert meta.enforcement_breakdown["dissent_quota"] == 3
    assert list(meta.enforcement_breakdown)[:5] == [
        "dissent_quota",
        "novelty_gate",
        "agreement_check",
        "anti_recursion",
        "missing_stance",
    ]
    block = session_block(meta)
    for key in (
        "schema_version: 1",
        "mode: high-council",
        "panel_size: 3",
        "rounds_run: 1",
        "enforcement_calls: 5",
        "chairman_failed_fallback: no",
        "tools_used: no",
        "input_tokens_estimate: ~",
        "output_tokens_estimate: ~",
        "duration_seconds: ~",
        "provider_count: 1",
        "fallbacks_triggered: none",
    ):
        assert key in block, key
    assert "enforcement_breakdown: {dissent_quota: 3, novelty_gate: 0, agreement_check: 2" in block
    assert "### Session Metadata" in result.transcript()


def test_no_enforcement_reads_none() -> None:
    result = convene(well_formed_reply)  # quick mode: no guard, every line readable
    assert result.metadata is not None and result.metadata.enforcement_calls == 0
    assert "enforcement_breakdown: none" in session_block(result.metadata)


def test_the_novelty_gate_counts_as_novelty_gate() -> None:
    said = "Paradigms shift when anomalies pile up; this plan ignores that entirely."

    def reply(request: ModelRequest) -> str:
        if request.seat == "kuhn" and request.stage in ("blind", "cross"):
            if "repeats your earlier answer" in request.messages[-1]["content"]:
                return "Answering the challenge: the schedule data says otherwise.\n" + line("a")
            return said + "\n" + line("a")  # the same words in both rounds
        return well_formed_reply(request)

    result = convene(reply, "high-council")  # round 2 repeats round 1: sent back once
    assert result.metadata is not None
    assert result.metadata.enforcement_breakdown["novelty_gate"] == 1


def test_the_json_record_carries_the_tally_and_metadata() -> None:
    result = convene(well_formed_reply)
    record = json.loads(result.model_dump_json())
    final = next(t for t in record["tallies"] if t["stage"] == "final")
    assert final["outcome"] == "consensus" and final["needed"] == 2.0
    assert final["ballot"] == "nyk" and final["dealbreaker"] == "harmful"
    assert record["metadata"]["enforcement_breakdown"] == {}
