"""The Python API beyond convene: personas written in code, a run's transcript and its notebook
view, finding recorded runs."""

from __future__ import annotations

from datetime import date

import pytest

import council
from council.base.errors import CardError
from council.testing import ScriptedModel


def skeptic() -> council.Persona:
    return council.Persona(
        "skeptic",
        description="Doubts every claim until someone has tried to break it.",
        role="Professional sceptic",
        traits=["dry", "patient"],
        asks=["What would change your mind?"],
        blind_spots=["Decisions that must be made before the evidence is in"],
    )


def test_a_persona_in_code_is_a_card_with_every_field_in_its_prompt() -> None:
    card = skeptic()
    assert isinstance(card, council.PersonaCard) and card.path is None
    assert card.text.startswith("---\nname: skeptic\n")
    result = council.Council(
        [card, "popper"], protocol="quick", model=ScriptedModel(["Fine."] * 3), runs_dir=None
    ).convene("Why?")
    request = result.turns_in("opening")[0].request
    assert request is not None and result.status == "completed"
    prompt = request.messages[0]["content"]
    for text in (
        "You are skeptic: Doubts every claim",
        "Your role: Professional sceptic.",
        "You are dry, patient.",
        "The council is deliberating: Why?",
        "- What would change your mind?",
        "- Decisions that must be made",
    ):
        assert text in prompt, text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, "field 'name': String should match pattern"),
        ({"tier": "ultra"}, "field 'tier': Input should be 'high', 'mid' or 'low'"),
        ({"colour": "red"}, "field 'colour': unknown field (not allowed here)"),
        ({"description": ""}, "field 'description': String should have at least 1 character"),
        ({"model": "gpt4"}, "field 'model': model hint must be a litellm model string"),
    ],
)
def test_a_bad_persona_in_code_names_its_field(fields, message) -> None:
    given = {"name": "ok", "description": "d", "role": "r", **fields}
    with pytest.raises(CardError) as caught:
        council.Persona(given.pop("name"), **given)
    assert message in str(caught.value) and "built in code>" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_a_persona_in_code_is_recorded_and_resumes(tmp_path) -> None:
    scripted = ScriptedModel(["One.", "Two.", "Verdict."])
    first = council.Council(
        [skeptic(), "popper"], protocol="quick", model=scripted, runs_dir=tmp_path
    ).convene("Why?")
    loaded = council.load_run(first.run_id, tmp_path)
    assert [t.persona for t in loaded.turns_in("opening")] == ["skeptic", "popper"]


def test_transcript_and_notebook_view(tmp_path) -> None:
    scripted = ScriptedModel(["<b>bold</b> claim", "Second.", "Verdict & reasons."])
    result = council.Council(
        ["popper", "kuhn"], protocol="quick", model=scripted, runs_dir=tmp_path
    ).convene("Cars <or> bikes?")
    assert result.run_dir is not None
    on_disk = (tmp_path / result.run_id / "transcript.md").read_text(encoding="utf-8")
    assert result.transcript() == on_disk
    html = result._repr_html_()
    assert "<h3>Cars &lt;or&gt; bikes?</h3>" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>bold</b>" not in html and "Verdict &amp; reasons." in html
    assert html.index(">popper<") < html.index(">kuhn<") < html.index("Verdict &amp; reasons.")
    assert html.count("Verdict &amp; reasons.") == 1  # in its stage, not again as "Synthesis"


def test_find_runs(tmp_path) -> None:
    for question in ("Ban cars?", "Tax sugar?"):
        council.Council(
            ["popper", "kuhn"], protocol="quick", model=ScriptedModel(["x"] * 3), runs_dir=tmp_path
        ).convene(question)
    assert [r["question"] for r in council.find_runs(runs_dir=tmp_path)] == [
        "Tax sugar?",
        "Ban cars?",
    ]
    assert [r["question"] for r in council.find_runs(question="cars", runs_dir=tmp_path)] == [
        "Ban cars?"
    ]
    query = council.RunQuery(persona="kuhn", until=date(2000, 1, 1))
    assert council.find_runs(query, tmp_path) == []


def test_the_runs_home_is_the_default(_runs_home) -> None:
    result = council.Council(
        ["popper", "kuhn"], protocol="quick", model=ScriptedModel(["x"] * 3)
    ).convene("Where?")
    assert result.run_dir is not None and str(result.run_dir).startswith(str(_runs_home))
    assert council.load_run("latest").run_id == result.run_id
