"""The assistant axis and activation drift: the arithmetic on synthetic tensors (no model), the
seat backend's plumbing through a council and the ledger with a stand-in reader, and (marked
local_model) a tiny axis and a council on the bundled model in PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from council import Council, SamplingSettings
from council import measure as council_measure
from council.base.errors import ConfigError, UnknownNameError
from council.meter.activations.axis import Sample, axis_from_samples, collect_samples, split_samples
from council.meter.activations.drift import activation_drift, drift_table
from council.meter.activations.stats import (
    auc,
    auc_interval,
    contrast_of_means,
    correlations,
    project,
)
from council.meter.run_report import Drift
from council.personas.library import find_persona
from council.records.axis import AssistantAxis, load_axis, stored_axis
from council.records.events import TurnFinished, event_json, parse_event
from council.records.record import utc_now
from council.records.run import Turn, TurnActivations
from council.seats.activations.backend import (
    ActivationModel,
    Reply,
    axis_cap,
    clamp_along,
    missing_packages,
    parse_cap,
)
from council.seats.local import BUNDLED_MODELS
from council.seats.seat import make_model
from council.store.loader import load_run
from council.testing import FunctionModel
from council.testing.doubles import well_formed_reply

SHA = BUNDLED_MODELS["smollm2-135m-instruct"].sha256
WIDTH, LAYERS, SIGNAL_LAYER = 8, 4, 2


@pytest.fixture(autouse=True)
def _axis_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_AXIS_DIR", str(tmp_path / "axes"))  # never the user's cache


# --- the arithmetic -------------------------------------------------------------------------


def test_contrast_of_means_is_the_difference_of_group_means() -> None:
    positive = np.array([[1.0, 2.0], [3.0, 4.0]])
    negative = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    assert contrast_of_means(positive, negative).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="one width"):
        contrast_of_means(positive, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="both sides"):
        contrast_of_means(positive, np.zeros((0, 2)))


def test_projection_is_measured_along_the_unit_direction_from_the_origin() -> None:
    samples = np.array([[3.0, 7.0], [-1.0, 0.0]])
    assert project(samples, np.array([2.0, 0.0])).tolist() == [3.0, -1.0]
    assert project(samples, np.array([0.0, 5.0]), origin=np.array([0.0, 1.0])).tolist() == [
        6.0,
        -1.0,
    ]
    with pytest.raises(ValueError, match="undefined"):
        project(samples, np.zeros(2))


def test_auc_on_separated_reversed_tied_and_mixed_scores() -> None:
    assert auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5
    assert auc([1, 3], [2, 0]) == 0.75  # 3 of 4 pairs ordered
    with pytest.raises(ValueError):
        auc([], [1.0])


def test_auc_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    mixed = auc_interval(rng.normal(0.5, 1, 30), rng.normal(0, 1, 30))
    assert mixed.low is not None and mixed.high is not None
    assert 0 <= mixed.low <= mixed.value <= mixed.high <= 1 and mixed.high - mixed.low > 0.05
    assert mixed.method.startswith("Newcombe") and (mixed.positives, mixed.negatives) == (30, 30)
    too_few = auc_interval([1.0], [0.0, 2.0])
    assert too_few.low is None and "fewer than 2" in too_few.method


def test_the_auc_interval_is_not_degenerate_at_perfect_separation() -> None:
    """A percentile bootstrap gives [1, 1] when every held-out pair is ordered: certainty from
    a dozen replies. The score interval's lower bound falls with fewer replies instead."""
    eight_six = auc_interval(np.arange(8) + 10.0, np.arange(6.0))
    four_six = auc_interval(np.arange(4) + 10.0, np.arange(6.0))
    assert eight_six.value == four_six.value == 1.0 and eight_six.high == 1.0
    assert eight_six.low is not None and four_six.low is not None
    assert 0.6 < four_six.low < eight_six.low < 0.8  # 0.63 and 0.72
    reversed_ = auc_interval(np.arange(6.0), np.arange(8) + 10.0)
    assert reversed_.low == 0.0 and reversed_.high == pytest.approx(1 - eight_six.low, abs=1e-3)
    assert auc_interval(np.arange(40) + 100.0, np.arange(40.0)).low > 0.9  # narrows with n


def test_the_auc_interval_covers_the_true_auc_at_held_out_sizes() -> None:
    """Binormal scores with a known AUC, at the axis's held-out sizes: nominal 95% coverage."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    for m, n, true in ((4, 6, 0.9), (8, 6, 0.75)):
        shift = np.sqrt(2) * norm.ppf(true)
        hits = 0
        for _ in range(400):
            found = auc_interval(rng.normal(shift, 1, m), rng.normal(0, 1, n))
            assert found.low is not None and found.high is not None
            hits += found.low <= true <= found.high
        assert 0.92 <= hits / 400 <= 0.99, (m, n, true, hits / 400)


def test_correlations_need_three_varying_pairs() -> None:
    line = correlations([0, 1, 2, 3], [1, 3, 5, 7])
    assert line["pearson"]["r"] == 1.0 and line["spearman"]["rho"] == 1.0
    opposite = correlations([0, 1, 2, 3], [3, 2, 1, 0.5])
    assert opposite["spearman"]["rho"] == -1.0 and opposite["pearson"]["r"] < -0.9
    assert "at least 3" in correlations([0, 1], [1, 2])["note"]
    assert "constant" in correlations([1, 1, 1], [1, 2, 3])["note"]


# --- the axis on synthetic activations ------------------------------------------------------

SIGNAL = np.eye(WIDTH)[0] * 6.0  # the assistant side sits 6 units along the first coordinate


def synthetic_samples(
    prompts: int = 4, personas: tuple[str, ...] = ("a", "b", "c", "d")
) -> list[Sample]:
    """Activations whose layer SIGNAL_LAYER separates the sides along SIGNAL; other layers are
    noise alone, so an axis there should separate no better than chance."""
    rng = np.random.default_rng(7)
    samples = []
    speakers = [("assistant", f"assistant#{i}") for i in range(3)] + [
        ("persona", p) for p in personas
    ]
    for prompt in range(prompts):
        for side, speaker in speakers:
            means = rng.normal(0, 1, (LAYERS + 1, WIDTH))
            if side == "assistant":
                means[SIGNAL_LAYER] += SIGNAL
            if speaker == "arendt":  # one pole of a polarity pair stands apart on another axis
                means[SIGNAL_LAYER] += np.eye(WIDTH)[1] * 6.0
            samples.append(Sample(side, speaker, prompt, f"{speaker} on {prompt}", means))  # type: ignore[arg-type]
    return samples


def synthetic_axis(layer: int = SIGNAL_LAYER) -> AssistantAxis:
    cards = [find_persona(n) for n in ("socrates", "taleb", "arendt", "hobbes")]
    samples = synthetic_samples(prompts=12, personas=tuple(c.name for c in cards))
    return axis_from_samples(
        samples,
        model="local/smollm2-135m-instruct",
        model_sha256=SHA,
        layer=layer,
        prompts=[f"p{i}" for i in range(12)],
        cards=cards,
        reply_tokens=4,
    )


def test_held_out_split_keeps_prompts_system_prompts_and_personas_apart() -> None:
    samples = synthetic_samples()
    fitted, held = split_samples(samples, ["a", "b", "c", "d"])
    for sample, f, h in zip(samples, fitted, held, strict=True):
        assert not (f and h)
        if f:
            assert sample.prompt % 2 == 0 and sample.speaker not in {"c", "d", "assistant#1"}
        if h:
            assert sample.prompt % 2 == 1 and sample.speaker not in {"a", "b"}
            assert sample.speaker not in {"assistant#0", "assistant#2"}
    trained = {s.speaker for s, f in zip(samples, fitted, strict=True) if f}
    scored = {s.speaker for s, h in zip(samples, held, strict=True) if h}
    assert not trained & scored  # no system prompt (or persona) both trains and tests
    # 3 plain system prompts: #0 and #2 train, #1 is held out.
    assert sum(held) == 2 * (1 + 2) and sum(fitted) == 2 * (2 + 2)


def test_the_axis_records_held_out_counts_that_match_its_samples() -> None:
    axis = synthetic_axis()
    record = axis.held_out_auc
    flagged = [s for s in axis.samples if s.held_out]
    assistant = [s for s in flagged if s.side == "assistant"]
    persona = [s for s in flagged if s.side == "persona"]
    assert record["positives"] == record["held_out"]["assistant"] == len(assistant) == 6
    assert record["negatives"] == record["held_out"]["persona"] == len(persona) == 12
    assert record["held_out"]["assistant_systems"] == [1]
    assert record["held_out"]["personas"] == sorted({s.speaker for s in persona})
    assert record["held_out"]["prompts"] == sorted({s.prompt for s in flagged})
    assert record["low"] < 1.0 == record["estimate"]  # perfect, and still an honest interval


def test_the_axis_finds_the_planted_direction_and_separates_held_out_samples() -> None:
    axis = synthetic_axis()
    assert axis.layer == SIGNAL_LAYER and axis.num_layers == LAYERS and axis.hidden_size == WIDTH
    assert abs(np.linalg.norm(axis.direction) - 1) < 1e-9
    assert axis.direction[0] > 0.9  # the planted direction, up to noise
    assert axis.held_out_auc["estimate"] == 1.0
    assert axis.layer_auc[SIGNAL_LAYER] == 1.0
    noise = [axis.layer_auc[i] for i in (1, 3, 4)]  # noise alone: near chance
    assert 0.3 < float(np.mean(noise)) < 0.7 and max(noise) < 0.85
    assert axis.assistant_projection > 1 > -1 > axis.persona_projection
    assert axis.position(axis.assistant_projection) == pytest.approx(1.0)
    assert axis.position(axis.persona_projection) == pytest.approx(0.0)
    assert {s.side for s in axis.samples if s.held_out} == {"assistant", "persona"}
    assert len(axis.samples) == 12 * 7 and set(axis.personas) == {
        "socrates",
        "taleb",
        "arendt",
        "hobbes",
    }


def test_a_polarity_pair_gets_its_persona_vector() -> None:
    axis = synthetic_axis()
    (vector,) = axis.persona_vectors  # arendt and hobbes are a declared pair; the rest are not
    assert vector.pair == ("arendt", "hobbes") and vector.samples == 2 * 12
    assert vector.direction[1] > 0.9 and vector.held_out_auc == 1.0
    # Cross-fitted by prompt: every reply of each pole is held out once.
    assert vector.held_out_per_side == 12 and "leave one prompt out" in (vector.auc_method or "")
    assert abs(vector.axis_cosine) < 0.5  # mostly apart from the assistant axis


def test_a_persona_vector_separates_no_better_than_chance_on_noise() -> None:
    """Poles that differ by nothing: the cross-fitted AUC stays near one half on average."""
    from council.meter.activations.axis import _cross_fitted

    rng = np.random.default_rng(3)
    scores = []
    for _ in range(40):
        ones = [
            Sample("persona", "x", p, "", rng.normal(0, 1, (LAYERS + 1, WIDTH))) for p in range(6)
        ]
        twos = [
            Sample("persona", "y", p, "", rng.normal(0, 1, (LAYERS + 1, WIDTH))) for p in range(6)
        ]
        scores.append(_cross_fitted(ones, twos, SIGNAL_LAYER))
    assert 0.3 < float(np.mean(scores)) < 0.6


def test_an_axis_is_saved_with_its_provenance_and_read_back(tmp_path: Path) -> None:
    axis = synthetic_axis()
    path = axis.save(tmp_path / "axes" / "smollm2-135m-instruct.json")
    again = stored_axis("local/smollm2-135m-instruct")
    assert again is not None and again.axis_id == axis.axis_id and again == load_axis(path)
    stored = json.loads(path.read_text())
    assert stored["model_sha256"] == SHA and stored["prompts"][:2] == ["p0", "p1"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**stored, "layer": "middle"}))
    with pytest.raises(ConfigError, match=r"broken.json: not an assistant axis: layer"):
        load_axis(broken)


def test_axis_build_refuses_too_few_samples_to_hold_out() -> None:
    cards = [find_persona("socrates"), find_persona("taleb")]
    samples = synthetic_samples(prompts=1, personas=("socrates", "taleb"))
    with pytest.raises(ConfigError, match="at least 2 of each"):
        axis_from_samples(
            samples,
            model="local/x",
            model_sha256=SHA,
            layer=2,
            prompts=["p"],
            cards=cards,
            reply_tokens=4,
        )


def test_samples_are_collected_with_and_without_system_prompts() -> None:
    seen: list[list[dict[str, str]]] = []

    def respond(messages: list[dict[str, str]], tokens: int) -> tuple[str, Any]:
        seen.append(messages)
        return f"reply {len(seen)}", np.zeros((3, 2))

    cards = [find_persona("socrates")]
    samples = collect_samples(respond, cards, ["Q1?", "Q2?"], reply_tokens=5, systems=("", "plain"))
    assert [(s.side, s.speaker, s.prompt) for s in samples] == [
        ("assistant", "assistant#0", 0),
        ("assistant", "assistant#1", 0),
        ("persona", "socrates", 0),
        ("assistant", "assistant#0", 1),
        ("assistant", "assistant#1", 1),
        ("persona", "socrates", 1),
    ]
    assert seen[0] == [{"role": "user", "content": "Q1?"}]  # the model's own default
    assert seen[1][0] == {"role": "system", "content": "plain"}
    assert "Socrates" in seen[2][0]["content"] and seen[2][1]["content"] == "Q1?"


def test_capping_clamps_only_the_component_along_the_axis() -> None:
    rng = np.random.default_rng(3)
    direction = np.array([0.6, 0.8, 0.0])
    origin = np.array([1.0, 1.0, 1.0])
    hidden = rng.normal(0, 4, (200, 3))
    capped = clamp_along(hidden, direction, origin, ceiling=0.5)
    before, after = (hidden - origin) @ direction, (capped - origin) @ direction
    assert after.max() <= 0.5 + 1e-12 and (before > 0.5).any()  # the cap bit, and holds
    below = before <= 0.5
    assert np.array_equal(capped[below], hidden[below])  # rows under the cap are untouched
    orthogonal = np.array([-0.8, 0.6, 0.0])
    assert np.allclose(capped @ orthogonal, hidden @ orthogonal)  # the rest is left alone
    assert np.allclose(capped[:, 2], hidden[:, 2])


def test_a_cap_sits_at_a_percentile_of_the_persona_replies() -> None:
    axis = synthetic_axis()
    persona = sorted(s.projection for s in axis.samples if s.side == "persona")
    cap = axis_cap(axis, 100)
    assert cap.layer == axis.layer and cap.ceiling == pytest.approx(persona[-1])
    assert axis_cap(axis, 50).ceiling == pytest.approx(float(np.median(persona)))
    with pytest.raises(ConfigError, match="needs an assistant axis"):
        axis_cap(None, 90)
    with pytest.raises(ConfigError, match="not between 0 and 100"):
        axis_cap(axis, 120)


# --- the seat backend, with a stand-in reader -----------------------------------------------


class StandInReader:
    """Plays the loaded model: replies whose mean activations at SIGNAL_LAYER sit further
    toward the assistant side with every call, so the drift is known in advance."""

    sha256 = SHA
    num_layers = LAYERS

    def __init__(self) -> None:
        self.calls = 0
        self.kwargs: list[dict[str, Any]] = []

    def respond(self, messages: list[dict[str, str]], **kwargs: Any) -> Reply:
        self.calls += 1
        self.kwargs.append(kwargs)
        means = np.zeros((LAYERS + 1, WIDTH))
        means[SIGNAL_LAYER] = SIGNAL * (self.calls - 2) / 4  # -1.5, 0, 1.5, ... units
        return Reply(
            f"turn {self.calls}", means, prompt_tokens=10, completion_tokens=4, seconds=0.01
        )


def test_an_activation_seat_records_its_turns_through_the_engine_and_the_ledger(
    tmp_path: Path,
) -> None:
    axis = synthetic_axis()
    seat = ActivationModel(
        "activations/smollm2-135m-instruct",
        reader=StandInReader(),
        axis=axis,
        layers=[1, SIGNAL_LAYER],
    )
    council = Council(
        ["socrates", "taleb"],
        protocol="council",
        runs_dir=tmp_path,
        model=FunctionModel(well_formed_reply),
        seats={"socrates": seat},
    )
    result = council.convene("Should the town keep its library?")
    assert result.status == "completed", result.error
    recorded = [t for t in result.turns if t.activations is not None]
    assert [t.seat for t in recorded] == ["socrates", "socrates"]
    first = recorded[0].activations
    assert first is not None and first.layers == [1, SIGNAL_LAYER] and first.tokens == 4
    assert len(first.means) == 2 and len(first.means[0]) == WIDTH
    assert first.model_sha256 == SHA and first.axis_id == axis.axis_id
    assert first.axis_projection == pytest.approx(axis.project(first.means[1]), abs=1e-3)
    assert all(t.activations is None for t in result.turns if t.seat != "socrates")

    stored = load_run(result.run_id, tmp_path)  # the ledger kept them
    assert [t.activations for t in stored.turns] == [t.activations for t in result.turns]
    report = activation_drift(stored, axis)
    assert report.recorded_turns == 2 and [r.stage for r in report.turns] == [
        "opening",
        "cross_examination",
    ]
    (seat_drift,) = report.seats
    assert seat_drift.seat == "socrates" and (seat_drift.change or 0) > 0  # toward the assistant
    assert "no embedding drift" in (report.embedding_correlation.note or "")
    assert "socrates" in drift_table(report)


def test_council_diversity_adds_the_activation_drift_of_recorded_turns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from council.cli.main import main

    axis_file = synthetic_axis().save(tmp_path / "axis.json")
    seat = ActivationModel(
        "activations/smollm2-135m-instruct",
        reader=StandInReader(),
        layers=[SIGNAL_LAYER],
        axis_dir=tmp_path / "none",
    )
    council = Council(
        ["socrates", "taleb"],
        protocol="council",
        runs_dir=tmp_path / "runs",
        model=FunctionModel(well_formed_reply),
        seats={"socrates": seat},
    )
    run = council.convene("Should the town keep its library?")
    argv = [
        "diversity",
        str(run.run_dir),
        "--embedder",
        "fake",
        "--no-html",
        "--axis",
        str(axis_file),
    ]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["activation_drift"]
    assert report["recorded_turns"] == 2 and report["axis"]["layer"] == SIGNAL_LAYER
    assert [row["seat"] for row in report["turns"]] == ["socrates", "socrates"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "activation drift: 2 turns recorded activations" in table and "socrates:" in table
    # The page and the Python API carry it too, chart and all.
    page = council_measure(run, embedder="fake", axis=axis_file).to_html()
    assert "Drift inside the model: the assistant axis" in page
    assert "Position on the assistant axis per seat" in page and "<svg" in page
    assert main([*argv[:-3], "--axis", str(axis_file)]) == 0  # --no-html dropped
    written = (Path(str(run.run_dir)) / "report.html").read_text()
    assert "Drift inside the model" in written and "held-out AUC" in written


def test_a_run_without_activations_has_no_axis_section(tmp_path: Path) -> None:
    council = Council(
        ["socrates", "taleb"],
        protocol="council",
        runs_dir=tmp_path,
        model=FunctionModel(well_formed_reply),
    )
    report = council_measure(council.convene("Keep the library?"), embedder="fake")
    assert "activation_drift" not in report.to_json()
    assert "assistant axis" not in report.to_html()


async def test_a_capped_seat_hands_its_cap_to_the_model_and_records_it() -> None:
    from council.seats.model import ModelRequest

    axis, reader = synthetic_axis(), StandInReader()
    seat = ActivationModel(
        "activations/smollm2-135m-instruct", reader=reader, axis=axis, cap_percentile=90
    )
    request = ModelRequest(
        stage="s", messages=[{"role": "user", "content": "q"}], max_tokens=4, temperature=0.0
    )
    completion = await seat.complete(request)
    assert reader.kwargs[0]["cap"] == axis_cap(axis, 90) and reader.kwargs[0]["max_new_tokens"] == 4
    assert completion.activations is not None
    assert completion.activations.axis_cap == pytest.approx(axis_cap(axis, 90).ceiling)


def _turn(seat: str, stage: str, rnd: int, activations: TurnActivations | None) -> Turn:
    return Turn(
        run_id="r1",
        stage=stage,
        round=rnd,
        seat=seat,
        persona=seat,
        provider="activations",
        model="activations/smollm2-135m-instruct",
        content="text",
        latency_s=0.1,
        started_at=utc_now(),
        activations=activations,
    )


def test_activation_drift_pairs_turns_with_embedding_drift_and_skips_what_it_cannot_place() -> None:
    axis = synthetic_axis()
    from council.records.run import RunResult, SeatAssignment

    def recorded(offset: float, layer: int = SIGNAL_LAYER, sha: str = SHA) -> TurnActivations:
        row = (np.asarray(axis.origin) + offset * np.asarray(axis.direction)).tolist()
        return TurnActivations(model_sha256=sha, layers=[layer], means=[row], tokens=4)

    turns = [
        _turn("a", "opening", 0, recorded(-1.0)),
        _turn("a", "debate", 1, recorded(0.0)),
        _turn("a", "debate", 2, recorded(2.0)),
        _turn("b", "opening", 0, recorded(1.0)),
        _turn("b", "debate", 1, recorded(0.5, layer=1)),
        _turn("b", "debate", 2, recorded(0.5, sha="0" * 64)),
        _turn("b", "x", 0, None),
    ]
    seats = [
        SeatAssignment(
            seat=s,
            persona=s,
            role="panel",
            provider="activations",
            model="activations/smollm2-135m-instruct",
            card_path=None,
            card_hash="h",
        )
        for s in "ab"
    ]
    run = RunResult(
        run_id="r1",
        run_dir=None,
        question="q",
        protocol="debate",
        protocol_hash="p",
        seats=seats,
        started_at=utc_now(),
        finished_at=utc_now(),
        status="completed",
        turns=turns,
    )
    embedding = [
        Drift(
            seat=seat,
            stage=stage,
            round=rnd,
            position=position,
            persona_similarity=None,
            assistant_similarity=None,
        )
        for seat, stage, rnd, position in (
            ("a", "opening", 0, 0.1),
            ("a", "debate", 1, 0.3),
            ("a", "debate", 2, 0.8),
            ("b", "opening", 0, 0.5),
        )
    ]
    report = activation_drift(run, axis, embedding)
    assert [r.projection for r in report.turns] == [-1.0, 0.0, 2.0, 1.0]
    span = axis.assistant_projection - axis.persona_projection
    assert report.turns[1].position == pytest.approx(-axis.persona_projection / span, abs=1e-3)
    assert report.skipped == {
        "layer 2 not recorded (has [1])": 1,
        "recorded on other weights than the axis's": 1,
    }
    a = next(s for s in report.seats if s.seat == "a")
    assert a.turns == 3 and a.change == pytest.approx(3 / span, abs=1e-3)
    assert a.slope_per_turn == pytest.approx(1.5 / span, abs=1e-3)
    corr = report.embedding_correlation
    assert corr.pairs == 4 and corr.spearman is not None and corr.pearson is not None
    assert corr.spearman.rho == pytest.approx(1.0)
    assert 0.9 < corr.pearson.r < 1  # same order, not a straight line


def test_turns_without_activations_serialize_as_before_and_with_them_round_trip() -> None:
    plain = _turn("a", "opening", 0, None)
    assert '"activations":' not in event_json(TurnFinished(run_id="r1", turn=plain))
    rich = _turn(
        "a",
        "opening",
        0,
        TurnActivations(
            model_sha256=SHA, layers=[15], means=[[0.5, -0.25]], tokens=3, axis_projection=1.5
        ),
    )
    event = parse_event(event_json(TurnFinished(run_id="r1", turn=rich)))
    assert isinstance(event, TurnFinished) and event.turn.activations == rich.activations


def test_the_backend_is_named_by_model_string_and_checks_its_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(UnknownNameError):
        make_model("activations/no-such-model")
    with pytest.raises(ConfigError, match="not an activations/<name>"):
        ActivationModel("local/smollm2-135m-instruct", reader=StandInReader())
    import council.seats.activations.backend as backend

    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    assert missing_packages() == list(backend.REQUIRED)
    with pytest.raises(ConfigError, match=r"council\[activations\]"):
        make_model("activations/smollm2-135m-instruct")


def test_the_activation_modules_import_no_torch() -> None:
    code = (
        "import sys, council.seats.activations.backend, council.meter.activations.axis, "
        "council.meter.activations.drift, council.cli.axis_cmd; "
        "print(sorted(m for m in ('torch', 'transformers', 'gguf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the real bundled model -----------------------------------------------------------------

NEEDS = missing_packages()


@pytest.mark.local_model
@pytest.mark.skipif(
    bool(NEEDS), reason=f"persona-council[activations] not installed: {', '.join(NEEDS)}"
)
def test_a_tiny_axis_and_an_activation_seat_on_the_bundled_model(tmp_path: Path) -> None:
    from council.meter.activations.axis import build_axis
    from council.seats.activations.backend import shared_reader

    reader = shared_reader("smollm2-135m-instruct")
    cards = [find_persona("socrates"), find_persona("machiavelli")]
    axis = build_axis(
        reader, cards, prompts=["Is rain good?", "Should I buy a car?"], layer=15, reply_tokens=3
    )
    assert axis.model_sha256 == SHA and axis.num_layers == 30 and axis.hidden_size == 576
    assert len(axis.samples) == 2 * (4 + 2) and axis.layer_auc.keys() == set(range(1, 31))
    assert 0 <= axis.held_out_auc["estimate"] <= 1

    seat = ActivationModel("activations/smollm2-135m-instruct", axis=axis, layers=[8, 15])
    council = Council(
        ["socrates", "machiavelli"],
        protocol="council",
        runs_dir=tmp_path,
        model=FunctionModel(well_formed_reply),
        seats={"socrates": seat},
        sampling=SamplingSettings(max_tokens=4, temperature=0.0, seed=1),
    )
    result = council.convene("Should the town keep its library?")
    assert result.status == "completed", result.error
    recorded = [t for t in result.turns if t.activations is not None]
    assert [t.seat for t in recorded] == ["socrates", "socrates"]
    for turn in recorded:
        assert turn.activations is not None and turn.activations.layers == [8, 15]
        assert [len(row) for row in turn.activations.means] == [576, 576]
        assert (
            0 < turn.activations.tokens <= 4 and turn.completion_tokens == turn.activations.tokens
        )
        assert turn.activations.axis_projection is not None and turn.cost_usd == 0.0
    report = activation_drift(load_run(result.run_id, tmp_path), axis)
    assert len(report.turns) == 2 and report.seats[0].turns == 2
    assert all(r.position is not None and np.isfinite(r.position) for r in report.turns)

    # Capped below where the assistant replies sit, the recorded projection stays under it.
    cap = axis_cap(axis, 50)
    messages = [{"role": "user", "content": "Is rain good?"}]
    free = reader.respond(messages, max_new_tokens=3)
    capped = reader.respond(messages, max_new_tokens=3, cap=cap)
    assert axis.project(free.layer_means[axis.layer]) > cap.ceiling  # the cap has work to do
    assert axis.project(capped.layer_means[axis.layer]) <= cap.ceiling + 1e-3


def test_a_cap_is_named_as_a_percentile_or_given_as_a_ceiling() -> None:
    axis, reader = synthetic_axis(), StandInReader()
    model = "activations/smollm2-135m-instruct"
    by_text = ActivationModel(model, reader=reader, axis=axis, cap="p90")
    assert by_text.cap == ActivationModel(model, reader=reader, axis=axis, cap_percentile=90).cap
    ceiling = ActivationModel(model, reader=reader, axis=axis, cap="-1.5").cap
    assert ceiling is not None and ceiling.ceiling == -1.5 and ceiling.layer == axis.layer
    assert parse_cap(" p50 ") == ("percentile", 50.0) and parse_cap("2") == ("ceiling", 2.0)
    for bad in ("p0", "p101", "high", ""):
        with pytest.raises(ConfigError, match="expected pN"):
            parse_cap(bad)
    with pytest.raises(ConfigError, match="axis build"):
        ActivationModel(model, reader=reader, axis=None, cap="3")


def test_the_activation_cap_option_reaches_the_seats_it_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from council.cli.main import main
    from council.records.settings import CallSettings
    from council.seats.seat import make_model

    axis = synthetic_axis()
    axis.save(tmp_path / "smollm2-135m-instruct.json")
    monkeypatch.setenv("COUNCIL_AXIS_DIR", str(tmp_path))
    pytest.importorskip("transformers")
    seat = make_model(
        "activations/smollm2-135m-instruct", settings=CallSettings(activation_cap="p50")
    )
    assert isinstance(seat, ActivationModel) and seat.cap == axis_cap(axis, 50)
    with pytest.raises(SystemExit) as exit_info:
        main(["convene", "--activation-cap", "p500", "Q?"])
    assert exit_info.value.code == 2 and "expected pN" in capsys.readouterr().err


def test_the_cap_spares_the_attention_sink_of_the_prompt_and_holds_everywhere_else() -> None:
    """The prompt's first position carries a massive activation every later position attends
    to; clamping it made the bundled model loop. Decoding feeds one position: all capped."""
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    from council.seats.activations.backend import ActivationReader, Cap

    block = torch.nn.Identity()
    reader = ActivationReader.__new__(ActivationReader)
    reader._model = SimpleNamespace(
        config=SimpleNamespace(num_hidden_layers=4), model=SimpleNamespace(layers=[block] * 4)
    )
    cap = Cap(layer=2, direction=(1.0, 0.0), origin=(0.0, 0.0), ceiling=1.0)
    prompt = torch.tensor([[[500.0, 3.0], [5.0, 1.0], [0.5, 2.0]]])  # a sink, then two more
    with reader._capping(cap):
        prefill, step = block(prompt), block(torch.tensor([[[7.0, 4.0]]]))
    assert prefill[0, 0].tolist() == [500.0, 3.0]  # the sink is left as it is
    assert prefill[0, 1:].tolist() == [[1.0, 1.0], [0.5, 2.0]]  # the rest held at the ceiling
    assert step[0, 0].tolist() == [1.0, 4.0]
    assert block(prompt)[0, 1, 0] == 5.0  # and the hook is gone afterwards
