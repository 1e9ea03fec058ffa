"""nyk's panel rules on every seating path (SKILL.md v1.2.0, STEP 0; MIT, 0xNyk): the one
member whose domain the question is most plainly about votes with weight 1.5, locked when the
panel is seated and stated in the record (or "none" and why); no two seats share a reasoning
method. The paths: the CLI's --panel and --personas, Council(personas) and Council(panel=...)
in Python, quick mode, and an experiment's council units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council import Council, Persona
from council.app.experiments.units import CouncilUnit, run_unit
from council.base.errors import ConfigError
from council.cli.main import main
from council.meter.embedders import embedder_available
from council.records.events import RunStarted, parse_event
from council.testing import FakeProvider, FunctionModel, well_formed_reply

NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"
needs_embedder = pytest.mark.skipif(not embedder_available(), reason="no bundled embedder")


def dry_route(argv: list[str], capsys) -> tuple[dict[str, float], str]:  # type: ignore[no-untyped-def]
    assert main(["convene", *argv, "--dry-route", "--json"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    return {r["seat"]: r["weight"] for r in rows if r["role"] == "panel"}, out.err


@needs_embedder
def test_monorepo_or_polyrepo_on_the_architecture_triad_locks_a_domain_seat(
    imported: Path, capsys
) -> None:
    """nyk's own example: the architecture triad on "monorepo or polyrepo?"."""
    weights, err = dry_route(
        ["Should we use a monorepo or polyrepo?", "--panel", "architecture"], capsys
    )
    assert weights == {"council-aristotle": 1.5, "council-ada": 1.0, "council-feynman": 1.0}
    assert "domain seat: council-aristotle 1.5x - its domain 'Categorization & structure'" in err
    assert "embedding cosine" in err and "next council-feynman" in err


@needs_embedder
def test_personas_on_the_cli_get_a_domain_seat(capsys) -> None:
    weights, err = dry_route(
        [
            "Will feedback loops in the supply chain amplify this shortage?",
            "--personas",
            "popper,kuhn,meadows",
        ],
        capsys,
    )
    assert weights == {"popper": 1.0, "kuhn": 1.0, "meadows": 1.5}
    assert "domain seat: meadows 1.5x" in err and "embedding cosine" in err


def run(question: str, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("protocol", "high-council-quick")
    council = Council(
        model=FunctionModel(well_formed_reply), runs_dir=None, similarity="words", **kwargs
    )
    return council.convene(question)


def test_a_named_panel_in_python_locks_on_the_question_convened_and_records_it() -> None:
    """Council(panel=...) is built before any question: the seat is locked as the run starts,
    for the question it was convened on, and the record says which and why."""
    result = run(
        "Which feedback loops will amplify this shortage?", personas=["popper", "kuhn", "meadows"]
    )
    assert {s.seat: s.weight for s in result.seats if s.role == "panel"} == {
        "popper": 1.0,
        "kuhn": 1.0,
        "meadows": 1.5,
    }
    note = next(n for n in result.choice_notes if n.startswith("domain seat:"))
    assert note.startswith("domain seat: meadows 1.5x - its domain 'Systems thinking")
    assert "(shared words 2; next" in note
    # Quick mode tallies with it too: W_total = 1.5 + 1 + 1.
    assert any(t.denominator == 3.5 for t in result.tallies)
    panel = run("What do we really know about how scientists change their minds?", panel="dialogue")
    assert [s.seat for s in panel.seats if s.weight == 1.5] == ["kuhn"]
    assert any(n.startswith("panel 'dialogue'") for n in panel.choice_notes)


def test_the_record_says_when_no_member_stands_out() -> None:
    nothing = run("What should I have for lunch?", personas=["popper", "kuhn", "meadows"])
    assert all(s.weight == 1.0 for s in nothing.seats)
    assert "domain seat: none - no member's domain matches the question" in nothing.choice_notes[0]
    tied = run("Is this scientific?", personas=["popper", "kuhn", "meadows"])
    assert all(s.weight == 1.0 for s in tied.seats)
    assert (
        "domain seat: none - ambiguous match (shared words: popper 1, kuhn 1)" in tied.choice_notes
    )


def test_the_domain_seat_is_locked_with_the_panel_when_the_question_is_known() -> None:
    council = Council(
        ["popper", "kuhn", "meadows"],
        model=FunctionModel(well_formed_reply),
        runs_dir=None,
        similarity="words",
        question="Which feedback loops matter?",
    )
    assert {s.seat: s.weight for s in council.seat_map()}["meadows"] == 1.5
    weighted = Council(
        ["popper", "kuhn", "meadows"],
        model=FunctionModel(well_formed_reply),
        runs_dir=None,
        weights={"kuhn": 2.0},
        question="Which feedback loops?",
    )
    assert {s.seat: s.weight for s in weighted.seat_map()}["meadows"] == 1.0
    assert "domain seat: none - the caller's weights decide" in weighted.choice_notes


def clashing() -> list[Persona]:
    def card(name: str) -> Persona:
        return Persona(
            name,
            description=f"{name} tests things.",
            role="Tester",
            reasoning_method="Falsification",
        )

    return [card("tester-a"), card("tester-b")]


def test_shared_reasoning_method_is_refused_on_every_python_path() -> None:
    model = FunctionModel(well_formed_reply)
    with pytest.raises(ConfigError, match="tester-a and tester-b share the reasoning method"):
        Council(clashing(), model=model, runs_dir=None)
    with pytest.raises(ConfigError, match="share the reasoning method 'falsification'"):
        Council.for_question("Q?", personas=clashing(), model=model, runs_dir=None)


@pytest.fixture
def clash_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for card in clashing():
        (tmp_path / f"{card.name}.md").write_text(card.text)
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(tmp_path))
    return tmp_path


def test_shared_reasoning_method_is_a_one_line_cli_error(clash_folder: Path, capsys) -> None:
    argv = ["convene", "Q?", "--personas", "tester-a,tester-b", "--dry-route"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert "tester-a and tester-b share the reasoning method 'falsification'" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def unit(personas: tuple[str, ...], question: str, api_base: str, **extra) -> CouncilUnit:  # type: ignore[no-untyped-def]
    return CouncilUnit(
        unit="arm/q0/s0",
        arm="arm",
        personas=personas,
        models=("openai/fake",),
        question_index=0,
        question=question,
        sample=0,
        protocol="quick",
        max_tokens=64,
        temperature=0.0,
        endpoints=(("openai/fake", api_base),),
        **extra,
    )


def test_an_experiment_unit_seats_by_the_same_rules() -> None:
    question = "Will feedback loops in the supply chain amplify this shortage?"
    with FakeProvider("Fine.") as fake:
        outcome = run_unit(unit(("popper", "kuhn", "meadows"), question, fake.api_base))
    started = next(e for e in map(parse_event, outcome.events) if isinstance(e, RunStarted))
    assert {s.seat: s.weight for s in started.header.seats if s.role == "panel"}["meadows"] == 1.5
    assert any(n.startswith("domain seat: meadows 1.5x") for n in started.header.choice_notes)
    assert started.config is not None and started.config.weights == {"meadows": 1.5}


def test_an_experiment_arm_with_a_shared_method_fails_its_unit_in_one_line(
    clash_folder: Path,
) -> None:
    with FakeProvider("Fine.") as fake:
        outcome = run_unit(unit(("tester-a", "tester-b"), "Q?", fake.api_base))
        assert fake.request_count == 0
    assert outcome.row["status"] == "failed"
    assert "share the reasoning method 'falsification'" in outcome.row["error"]
    # A placebo unit seats one card in every seat by design: it is not refused.
    with FakeProvider("Fine.") as fake:
        placebo = run_unit(
            unit(("tester-a",), "Q?", fake.api_base, seat_models=("openai/fake", "openai/fake"))
        )
    assert placebo.row["status"] == "completed", placebo.row
