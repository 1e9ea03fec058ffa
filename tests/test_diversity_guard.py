"""The meter in the loop: guards that fire on low diversity or on a seat's drift, and not
otherwise, each decision recorded with what was measured; on test seats and a fake embedder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.app.probe import EmbeddingProbe
from council.base.errors import ProtocolError
from council.engine.deliberation import Deliberation
from council.engine.prompts import ASSISTANT_SYSTEM_PROMPT
from council.meter.analysis import card_reference_text
from council.meter.embedders import FakeEmbedder
from council.personas.library import find_persona
from council.protocols import find_protocol, load_protocol_file
from council.protocols.diagram import describe, mermaid
from council.protocols.spec import GuardStage
from council.records.run import GateNote, RunResult, TurnActivations
from council.seats.model import ChatModel, Completion, ModelRequest
from council.testing import FunctionModel, well_formed_reply

QUESTION = "How many parking spaces should the city centre keep?"
PANEL = ["popper", "kuhn", "meadows"]
# Three seats saying three unrelated things, and one shared answer.
DIFFERENT = {
    "popper": "Test the bold conjecture: remove half the spaces and watch whether trade falls.",
    "kuhn": "Paradigms of urban planning shift slowly; communities resist anomalies for years.",
    "meadows": "Find the leverage point: feedback loops between parking supply and traffic.",
}
SAME = "Keep about two hundred spaces near the market and price them by demand."
# Eight no-persona answers that differ from each other (a baseline well above zero) ...
SPREAD = [
    "Bananas grow best in warm tropical climates with steady rain.",
    "Quantum tunnelling lets particles cross energy barriers classically forbidden.",
    "Jazz improvisation follows chord changes while bending the melody freely.",
    "Glaciers carve valleys over millennia, leaving moraines and polished bedrock.",
    "Medieval guilds regulated apprenticeships, prices and the quality of craft.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    "Chess openings trade early material for tempo, space and initiative.",
    "Volcanic soils are fertile because eruptions deposit minerals like potassium.",
]
# ... ones that are all alike (a baseline of zero) ...
ASSISTANT = "As an AI assistant, here is a balanced overview of the considerations involved."
# ... and the plain assistant's usual spread: the same answer, a word changed.
PARAPHRASES = [
    ASSISTANT.replace("balanced", word)
    for word in ("careful", "neutral", "brief", "broad", "clear", "fair", "short", "full")
]


def council_on(
    replies: Callable[[str], str], protocol: str | Path = "guarded-council", **kwargs: Any
) -> tuple[Council, list[ModelRequest]]:
    """A council whose cross-examination says what ``replies`` gives each seat, and whose
    no-persona baseline answers are ``baseline`` (one per seed, cycling); with every request
    its models were sent."""
    baseline = kwargs.pop("baseline", SPREAD)
    asked: list[ModelRequest] = []

    def reply(request: ModelRequest) -> str:
        asked.append(request)
        if request.kind == "baseline":
            return baseline[(request.seed or 0) % len(baseline)]
        if request.stage == "cross_examination":
            return replies(request.seat)
        return well_formed_reply(request)

    council = Council(
        PANEL,
        protocol=str(protocol) if isinstance(protocol, Path) else protocol,
        model=FunctionModel(reply),
        embedder=FakeEmbedder(),
        **kwargs,
    )
    return council, asked


def gate(result: RunResult, name: str) -> GateNote:
    (note,) = [g for g in result.gates if g.gate == name]
    return note


def spoke(result: RunResult, stage: str) -> list[str]:
    return [t.seat for t in result.turns if t.stage == stage]


def test_the_devils_advocate_runs_when_replies_are_not_shown_above_the_no_persona_baseline(
    tmp_path: Path,
) -> None:
    council, asked = council_on(lambda seat: SAME, runs_dir=tmp_path)
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    note = gate(result, "diversity")
    assert note.fired and note.stage == "devils_advocate"
    assert note.measured == 0.0 and note.threshold is not None and note.threshold > 0.5
    # Every relabelling is at least as far above the baseline as three equal replies.
    assert note.p_value == 1.0 and note.alpha == 0.05
    assert "not shown above the no-persona baseline" in note.reason
    assert (
        "8 no-persona answers per model" in note.reason and "p = 1.000 > alpha 0.05" in note.reason
    )
    assert spoke(result, "devils_advocate") == PANEL
    # Its prompt carries what was measured.
    advocate = [r for r in asked if r.stage == "devils_advocate"]
    assert f"{note.threshold:.3f}" in advocate[0].messages[-1]["content"]
    assert "p = 1.000" in advocate[0].messages[-1]["content"]
    # The baseline: the cross-examination's own prompt, with no persona, eight seeds, once
    # for both guards; no turn of the run.
    baseline = [r for r in asked if r.kind == "baseline"]
    assert [r.seed for r in baseline] == list(range(8))
    assert {r.messages[0]["content"] for r in baseline} == {ASSISTANT_SYSTEM_PROMPT}
    seat_prompt = next(r for r in asked if r.stage == "cross_examination")
    assert baseline[0].messages[1:] == seat_prompt.messages[1:]
    assert not any(t.stage.endswith(".baseline") for t in result.turns)
    # Recorded in the ledger's event log, with the test, and shown in the transcript.
    folder = Path(result.run_dir or "")
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    checked = [e["note"] for e in events if e.get("type") == "gate_checked"]
    assert {(c["gate"], c["fired"]) for c in checked} == {("diversity", True), ("drift", False)}
    (stored,) = [c for c in checked if c["gate"] == "diversity"]
    assert stored["p_value"] == 1.0 and "permutation test" in stored["method"]
    transcript = (folder / "transcript.md").read_text()
    assert "*Gate diversity in devils_advocate: fired: diversity of 'cross_examination'" in (
        transcript
    )


def test_the_devils_advocate_is_skipped_when_replies_are_shown_above_the_baseline() -> None:
    council, _ = council_on(DIFFERENT.__getitem__, runs_dir=None, baseline=PARAPHRASES)
    result = council.convene(QUESTION)
    note = gate(result, "diversity")
    assert not note.fired and note.measured is not None and note.measured > 0.5
    assert note.threshold is not None and note.threshold < 0.2
    # Of C(11, 3) = 165 relabellings, only the stage's own is that far above the rest.
    assert note.p_value == pytest.approx(1 / 165, abs=1e-4)
    assert "is shown above the no-persona baseline" in note.reason
    assert "p = 0.006 <= alpha 0.05" in note.reason
    assert spoke(result, "devils_advocate") == []
    assert any(r.startswith("devils_advocate: diversity of") for r in result.skipped)
    assert result.status == "completed"


def test_replies_drawn_like_the_baseline_are_not_shown_above_it_so_the_guard_fires() -> None:
    """Seats that answer as their model does with no persona: the test cannot tell them
    apart from the baseline (p well above alpha), and the devil's advocate runs."""
    pool = [*SPREAD, *DIFFERENT.values()]
    council, _ = council_on(lambda seat: pool[8 + PANEL.index(seat)], runs_dir=None)
    result = council.convene(QUESTION)
    note = gate(result, "diversity")
    assert note.p_value is not None and note.p_value > 0.5, note.reason
    assert note.fired and spoke(result, "devils_advocate") == PANEL


def test_the_gate_note_carries_the_measure_the_floor_its_spread_p_and_the_method() -> None:
    council, _ = council_on(lambda seat: SAME, runs_dir=None)
    note = gate(council.convene(QUESTION), "diversity")
    assert note.measured == 0.0 and note.threshold is not None
    assert note.floor_low is not None and note.floor_high is not None
    assert note.floor_low <= note.threshold <= note.floor_high
    assert (note.p_value, note.alpha) == (1.0, 0.05)
    assert note.method == (
        "one-sided permutation test: the stage's distance minus the baseline's, against every "
        "one of 165 relabellings of its 3 replies with the no-persona answers (8 of "
        "test/function), drawn per model"
    )
    assert f"5th to 95th percentile of 3-answer subsets {note.floor_low:.3f}" in note.reason
    # A note written before guards tested still loads, and leaves the new fields out.
    old = GateNote.model_validate(
        {
            "stage": "g",
            "gate": "diversity",
            "fired": True,
            "reason": "below",
            "measured": 0.68,
            "threshold": 0.69,
        }
    )
    assert old.p_value is None and "p_value" not in old.to_json()


GUARDED = """\
name: guarded
description: A guard against the no-persona baseline, with its sample size and level.
stages:
  - {id: opening, kind: statement, prompt: "{{ question }}"}
  - {id: cross_examination, kind: response, sees: [opening], prompt: "Cross-examine."}
  - id: contrarian
    kind: guard
    watches: cross_examination
    diversity_below: baseline
    %s
    seats: [1]
    sees: [cross_examination]
    prompt: "Diversity {{ diversity }} against {{ diversity_floor }} (p {{ diversity_p }})."
  - {id: verdict, kind: synthesis, sees: [cross_examination, contrarian], prompt: "Decide."}
"""


@pytest.mark.parametrize(
    ("settings", "baseline", "message"),
    [
        (
            "baseline_samples: 2",
            SPREAD,
            "the test needs at least 3 no-persona answers of test/function, has 2 (baseline_samples: 2)",
        ),
        (
            "baseline_samples: 8",
            ["Yes.", "No.", "Maybe.", "Sure.", "Fine.", "Why not?", *SPREAD[:2]],
            "needs at least 3 no-persona answers of test/function, has 2 (baseline_samples: 8; "
            "6 answers under 40 characters left out)",
        ),
        (
            "baseline_samples: 3\n    baseline_alpha: 0.01",
            SPREAD,
            "20 relabellings cannot give p <= 0.01; raise baseline_samples",
        ),
    ],
)
def test_too_few_baseline_answers_leave_the_guard_unmeasured_and_it_does_not_fire(
    settings: str, baseline: list[str], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "guarded.yaml"
    path.write_text(GUARDED % settings)
    council, _ = council_on(lambda seat: SAME, protocol=path, runs_dir=None, baseline=baseline)
    result = council.convene(QUESTION)
    note = gate(result, "diversity")
    assert not note.fired and note.reason.startswith("unmeasured") and message in note.reason
    assert note.p_value is None and note.measured == 0.0
    assert spoke(result, "contrarian") == []


def test_replies_too_short_to_measure_are_left_out_and_counted() -> None:
    short = {"popper": "Agreed.", "kuhn": SAME, "meadows": SAME}
    council, _ = council_on(short.__getitem__, runs_dir=None)
    note = gate(council.convene(QUESTION), "diversity")
    assert "mean pairwise distance of 2 replies" in note.reason
    assert "1 reply under 40 characters left out" in note.reason
    assert note.method is not None and "its 2 replies" in note.method
    # With one measurable reply left there is nothing to compare.
    alone = {"popper": "Agreed.", "kuhn": "Fine by me.", "meadows": SAME}
    note = gate(council_on(alone.__getitem__, runs_dir=None)[0].convene(QUESTION), "diversity")
    assert not note.fired and note.reason == (
        "unmeasured: fewer than two replies in 'cross_examination' to measure; 2 replies under "
        "40 characters left out"
    )


STATED = """\
name: stated-threshold
description: A guard with a stated diversity threshold.
stages:
  - {id: opening, kind: statement, prompt: "{{ question }}"}
  - {id: cross_examination, kind: response, sees: [opening], prompt: "Cross-examine."}
  - id: contrarian
    kind: guard
    watches: cross_examination
    diversity_below: 0.4
    seats: [1]
    sees: [cross_examination]
    prompt: "Diversity {{ diversity }} is below {{ diversity_floor }}: argue the other side."
  - {id: verdict, kind: synthesis, sees: [cross_examination, contrarian], prompt: "Decide."}
"""


@pytest.mark.parametrize(
    ("replies", "fires"), [(lambda seat: SAME, True), (DIFFERENT.__getitem__, False)]
)
def test_a_stated_threshold_needs_no_baseline(
    replies: Callable[[str], str], fires: bool, tmp_path: Path
) -> None:
    path = tmp_path / "stated.yaml"
    path.write_text(STATED)
    council, asked = council_on(replies, protocol=path, runs_dir=None)
    result = council.convene(QUESTION)
    note = gate(result, "diversity")
    assert (note.fired, note.threshold) == (fires, 0.4)
    assert "the stated threshold 0.400" in note.reason
    assert spoke(result, "contrarian") == (["popper"] if fires else [])
    assert not any(r.kind == "baseline" for r in asked)


def test_a_seat_drifting_past_the_cap_alone_is_re_anchored_with_its_card() -> None:
    kuhn = find_persona("kuhn")
    # popper and meadows answer in their cards' own words; kuhn answers as the assistant.
    replies = {seat: card_reference_text(find_persona(seat)) for seat in PANEL} | {
        "kuhn": ASSISTANT
    }
    council, asked = council_on(replies.__getitem__, runs_dir=None, baseline=[ASSISTANT])
    result = council.convene(QUESTION)
    note = gate(result, "drift")
    assert note.fired and note.seats == ["kuhn"] and note.stage == "reanchor"
    assert note.threshold == 0.85 and note.measured == pytest.approx(1.0, abs=1e-3)
    assert (
        "kuhn past the drift cap 0.85" in note.reason and "popper 0.00 (embedding)" in note.reason
    )
    assert spoke(result, "reanchor") == ["kuhn"]
    (prompt,) = [r for r in asked if r.stage == "reanchor"]
    assert kuhn.fields.description in prompt.messages[-1]["content"]
    assert "kuhn (1.00)" in prompt.messages[-1]["content"]


def test_no_seat_within_the_cap_is_re_anchored() -> None:
    replies = {seat: card_reference_text(find_persona(seat)) for seat in PANEL}
    council, _ = council_on(replies.__getitem__, runs_dir=None, baseline=[ASSISTANT])
    result = council.convene(QUESTION)
    note = gate(result, "drift")
    assert not note.fired and note.seats == [] and note.measured == pytest.approx(0.0, abs=1e-3)
    assert "every seat within the drift cap 0.85" in note.reason
    assert spoke(result, "reanchor") == []
    assert any(r.startswith("reanchor: every seat within") for r in result.skipped)


def test_without_an_embedder_the_meter_guards_skip_and_say_why() -> None:
    council, asked = council_on(lambda seat: SAME, runs_dir=None)
    deliberation = Deliberation(
        council.protocol, council.panel, council.chair, QUESTION, run_id="no-probe", probe=None
    )
    result = asyncio.run(deliberation.run())
    assert result.status == "completed"
    assert {(g.gate, g.fired) for g in result.gates} == {("diversity", False), ("drift", False)}
    assert all("no embedder to measure with" in g.reason for g in result.gates)
    assert spoke(result, "devils_advocate") == spoke(result, "reanchor") == []
    assert not any(r.kind == "baseline" for r in asked)


class _Axis:
    """Just what the probe reads of an assistant axis: its id and the 0-to-1 position."""

    axis_id = "axis-1"

    def position(self, projection: float) -> float:
        return projection / 10


class _RecordingModel(ChatModel):
    """A seat on an open-weight model with an axis: each reply records its projection."""

    def __init__(self, projection: float) -> None:
        self.model, self.axis, self.projection = "activations/tiny", _Axis(), projection

    async def complete(self, request: ModelRequest) -> Completion:
        activations = TurnActivations(
            model_sha256="0" * 64,
            layers=[1],
            means=[[0.0]],
            tokens=1,
            axis_id="axis-1",
            axis_projection=self.projection,
        )
        # Long enough to be measured (MIN_REPLY_CHARACTERS).
        return Completion(
            f"{request.seat} answers from its own method, at some length.", activations=activations
        )


def test_drift_is_read_from_activations_where_a_turn_recorded_them() -> None:
    def in_character(request: ModelRequest) -> str:
        if request.stage == "cross_examination":
            return card_reference_text(find_persona(request.seat))
        return ASSISTANT if request.kind == "baseline" else well_formed_reply(request)

    council = Council(
        PANEL,
        protocol="guarded-council",
        runs_dir=None,
        embedder=FakeEmbedder(),
        model=FunctionModel(in_character),
        seats={"kuhn": _RecordingModel(9.5)},
    )
    result = council.convene(QUESTION)
    note = gate(result, "drift")
    assert note.fired and note.seats == ["kuhn"] and "kuhn 0.95 (activation)" in note.reason
    assert spoke(result, "reanchor") == ["kuhn"]


def test_the_probe_measures_what_the_meter_measures() -> None:
    probe = EmbeddingProbe(FakeEmbedder())
    assert probe.diversity([SAME, SAME]) == pytest.approx(0.0, abs=1e-6)
    assert probe.diversity(list(DIFFERENT.values())) > 0.5
    assert probe.name == "fake-64"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ("diversity_below: 0.2", "stage 'check'", "need 'watches: <stage>'"),
        (
            "watches: opening",
            "stage 'check'",
            "needs diversity_below, drift_above or hemlock_against",
        ),
        ("watches: opening\n    diversity_below: 3", "diversity_below", "lies in (0, 2]"),
        ("watches: opening\n    diversity_below: often", "diversity_below", "or baseline, not"),
        ("watches: rounds\n    drift_above: 0.5", "watches", "is a loop"),
        ("watches: nowhere\n    drift_above: 0.5", "watches", "undefined stage 'nowhere'"),
        (
            "watches: opening\n    diversity_below: 0.2\n    seats: drifting",
            "seats",
            "only a guard with drift_above",
        ),
    ],
)
def test_a_malformed_meter_guard_is_refused_naming_its_field(
    change: str, field: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""\
name: bad
description: A malformed guard.
stages:
  - {{id: opening, kind: statement, prompt: "{{{{ question }}}}"}}
  - id: rounds
    kind: loop
    rounds: 2
    stages:
      - {{id: again, kind: response, sees: [opening], prompt: "Again."}}
  - id: check
    kind: guard
    {change}
    sees: [opening]
    prompt: "Argue."
  - {{id: verdict, kind: synthesis, sees: [opening, again, check], prompt: "Decide."}}
""")
    with pytest.raises(ProtocolError) as caught:
        load_protocol_file(path)
    text = str(caught.value)
    assert "bad.yaml" in text and field in text and message in text, text


def test_the_shipped_guarded_protocol_lists_and_draws_its_guards() -> None:
    protocol = find_protocol("guarded-council")
    listing = describe(protocol)
    assert (
        "guard on cross_examination: diversity not shown above the no-persona baseline "
        "(alpha 0.05) (8 no-persona answers per model)" in listing
    )
    assert (
        "guard on cross_examination: drift above 0.85" in listing and "seats: drifting" in listing
    )
    assert "cross_examination --> devils_advocate" in mermaid(protocol)


LOOPED = """\
name: looped-guard
description: A guard inside a loop, measuring each round's revision.
stages:
  - {id: opening, kind: statement, prompt: "{{ question }}"}
  - id: rounds
    kind: loop
    rounds: 2
    stages:
      - {id: revise, kind: response, sees: [opening, revise], prompt: "Revise."}
      - id: contrarian
        kind: guard
        watches: revise
        diversity_below: noise_floor
        seats: [1]
        sees: [revise]
        prompt: "Round {{ round }}: diversity {{ diversity }} < {{ diversity_floor }}. Object."
  - {id: verdict, kind: synthesis, sees: [revise, contrarian], prompt: "Decide."}
"""


def test_a_guard_in_a_loop_measures_each_round_against_that_round_s_floor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "looped.yaml"
    path.write_text(LOOPED)
    asked: list[ModelRequest] = []

    def reply(request: ModelRequest) -> str:
        asked.append(request)
        if request.kind == "baseline":  # sampling spreads in round 1, barely in round 2
            return (SPREAD if request.round == 1 else PARAPHRASES)[request.seed or 0]
        if request.stage == "revise":  # the same answer in round 1, three in round 2
            return SAME if request.round == 1 else DIFFERENT[request.seat]
        return well_formed_reply(request)

    council = Council(
        PANEL,
        protocol=str(path),
        model=FunctionModel(reply),
        runs_dir=None,
        embedder=FakeEmbedder(),
    )
    result = council.convene(QUESTION)
    notes = {g.round: g for g in result.gates if g.gate == "diversity"}
    assert notes[1].fired and not notes[2].fired
    floors = notes[1].threshold, notes[2].threshold  # each round's own floor
    assert floors[0] is not None and floors[1] is not None and floors[0] > 0.9 > 0.1 > floors[1]
    assert [(t.round, t.seat) for t in result.turns if t.stage == "contrarian"] == [(1, "popper")]
    baseline = [(r.round, r.seed) for r in asked if r.kind == "baseline"]
    assert baseline == [(1, seed) for seed in range(8)] + [(2, seed) for seed in range(8)]


def test_a_failed_baseline_sample_leaves_the_floor_to_the_others() -> None:
    def reply(request: ModelRequest) -> str:
        if request.kind == "baseline":
            if request.seed == 1:
                raise RuntimeError("this sample broke")
            return SPREAD[request.seed or 0]
        return SAME if request.stage == "cross_examination" else well_formed_reply(request)

    council = Council(
        PANEL,
        protocol="guarded-council",
        model=FunctionModel(reply),
        runs_dir=None,
        embedder=FakeEmbedder(),
    )
    result = council.convene(QUESTION)
    note = gate(result, "diversity")
    assert note.fired and "7 no-persona answers per model" in note.reason
    assert result.status == "completed"


def test_the_no_persona_baseline_renders_a_first_prompt_that_names_the_card(
    tmp_path: Path,
) -> None:
    """A blind stage may use {{ card.* }}; asked with no persona, the assistant stands in."""
    from council.app.voices import first_prompt

    path = tmp_path / "anchored.yaml"
    path.write_text(
        "name: anchored\ndescription: A blind round that names the card.\nstages:\n"
        "  - kind: statement\n    id: first\n"
        "    prompt: 'As {{ card.role }} ({{ card.description }}), answer: {{ question }}'\n"
        "  - kind: synthesis\n    id: verdict\n    sees: [first]\n    prompt: Decide.\n"
    )
    prompt = first_prompt(load_protocol_file(path), "Keep the library?")
    assert prompt == "As Assistant (A helpful AI assistant.), answer: Keep the library?"


@pytest.mark.parametrize("spelling", ["baseline", "noise_floor"])
def test_both_spellings_of_the_no_persona_baseline_load_as_one(
    spelling: str, tmp_path: Path
) -> None:
    """``noise_floor`` is the older spelling of ``baseline``: protocols written with it load
    and test against the no-persona baseline, with 8 answers per model unless told."""
    path = tmp_path / "guarded.yaml"
    path.write_text(
        (GUARDED % "").replace("diversity_below: baseline", f"diversity_below: {spelling}")
    )
    (stage,) = [s for s in load_protocol_file(path).speaking_stages() if s.id == "contrarian"]
    assert isinstance(stage, GuardStage)
    assert (stage.diversity_below, stage.baseline_samples, stage.baseline_alpha) == (
        "baseline",
        8,
        0.05,
    )
    assert stage.samples_baseline
