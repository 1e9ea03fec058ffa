"""Persona files as people publish them: Markdown write-ups with front matter that is not a
card (kept as provenance), write-ups paired with their addenda as the arms of a variants
experiment, and subagent front matter read the way Claude Code reads it.

The fixtures under tests/fixtures/writeups and tests/fixtures/subagents are written for these
tests in the shapes that circulate (notes apps, Hugo, Jekyll; subagent collections)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from council.base.errors import CardError
from council.cli.main import main
from council.personas import load_card, system_prompt
from council.personas.addenda import pair_write_ups
from council.personas.formats import detect_format, read_foreign, write_imported
from council.testing import FakeProvider

FIXTURES = Path(__file__).parent / "fixtures"
WRITEUPS = FIXTURES / "writeups"
SUBAGENTS = FIXTURES / "subagents"


def write_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def imported_cards(folder: Path) -> list:  # type: ignore[type-arg]
    return [card for path in sorted(folder.glob("*.md")) for card in read_foreign(path)]


# --- Write-ups with front matter ---------------------------------------------------------------


def test_every_realistic_write_up_imports_with_its_front_matter_as_provenance() -> None:
    cards = imported_cards(WRITEUPS)
    assert len(cards) == 6  # before this change: 0 of 6 (taken for subagents without a name)
    by_file = {card.source.name: card for card in cards}
    pilot = by_file["harbour-pilot.md"]
    assert pilot.fields.extensions["provenance"] == {
        "author": "T. Example and R. Sample",
        "source": "https://example.org/personas/harbour-pilot",
        "date": __import__("datetime").date(2024, 3, 18),
    }
    front = pilot.fields.extensions["markdown"]["front_matter"]
    assert front["title"] == "Harbour pilot: Ines Caldeira"  # unquoted ': ' read as its tools do
    assert any("line 2 (title) is not strict YAML" in note for note in pilot.notes)
    assert pilot.fields.tags == ["persona", "maritime", "reflection"]
    assert pilot.fields.figure == "Ines Caldeira"
    # Wrapped lines belong to the label or list item above them.
    assert pilot.fields.blind_spots[1] == "anything that happens after the ship is alongside"
    assert "author:" not in pilot.body and "Tagus estuary" in pilot.body
    glacier = by_file["glacier_hydrologist.md"].fields.extensions["provenance"]
    assert glacier["author"] == ["A. Placeholder"]  # Hugo's list of authors, as written
    assert glacier["source"] == ["https://example.org/notes/glacier-hydrologist"]
    interpreter = by_file["court-interpreter.md"].fields
    assert interpreter.description.startswith("A court interpreter in Montreal")  # Jekyll's
    assert interpreter.extensions["provenance"]["source"] == "/personas/court-interpreter/"


@pytest.mark.parametrize(
    ("front", "body", "kind"),
    [
        ("title: Nurse\nauthor: X\ndate: 2024-01-01\n", "Prose.\n", "markdown"),
        ("author: X\nsource: https://example.org\n", "# Nurse\n\nProse.\n", "markdown"),
        ("title: Nurse\ndescription: A nurse.\n", "Prose.\n", "markdown"),
        ("name: nurse\ndescription: A nurse.\n", "You are a nurse.\n", "claude-code"),
        ("description: A nurse.\ntools: Read\n", "# Nurse\n", "claude-code"),
        ("title: Nurse\nmodel: sonnet\n", "# Nurse\n", "claude-code"),
        ("description: no name\n", "body\n", "claude-code"),  # refused: a subagent needs a name
        ("name: nurse\nrole: Nurse\ndescription: A nurse.\n", "body\n", "council"),
    ],
)  # fmt: skip
def test_only_front_matter_that_looks_like_a_subagent_is_read_as_one(
    tmp_path: Path, front: str, body: str, kind: str
) -> None:
    path = write_file(tmp_path / "persona.md", f"---\n{front}---\n{body}")
    assert detect_format(path, path.read_text()) == kind


# --- Write-ups paired with their addenda --------------------------------------------------------


def test_write_ups_and_addenda_pair_as_topic_and_framework_variants(tmp_path: Path) -> None:
    written = write_imported(pair_write_ups(imported_cards(WRITEUPS)), tmp_path / "cards")
    names = sorted(path.stem for path in written)
    assert names == [
        f"{base}-{style}"
        for base in ("court-interpreter", "glacier-hydrologist", "harbour-pilot")
        for style in ("framework", "topic")
    ]
    topic = load_card(tmp_path / "cards" / "harbour-pilot-topic.md")
    framework = load_card(tmp_path / "cards" / "harbour-pilot-framework.md")
    assert topic.fields.extensions["variant"] == {"of": "harbour-pilot", "style": "topic"}
    assert framework.fields.extensions["variant"] == {"of": "harbour-pilot", "style": "framework"}
    assert "variant-topic" in topic.fields.tags and "variant-framework" in framework.fields.tags
    assert topic.fields.framework == [] and len(framework.fields.framework) == 3
    assert framework.fields.framework[1].startswith("Perrow's normal accidents")
    assert framework.fields.blind_spots == topic.fields.blind_spots  # the write-up's, kept
    # The framework arm is the write-up with the addendum appended: the arms differ only by it.
    topic_prompt = system_prompt(topic, "Should the port run at night?")
    framework_prompt = system_prompt(framework, "Should the port run at night?")
    assert "Perrow" not in topic_prompt and "Perrow" in framework_prompt
    assert framework_prompt.startswith(topic_prompt.split("The council is deliberating")[0])
    assert topic_prompt.count("Should the port run at night?") == 1
    assert framework_prompt.count("Should the port run at night?") == 1
    # Both renditions' provenance is kept.
    addendum = framework.fields.extensions["addendum"]["provenance"]
    assert addendum["source"] == "https://example.org/personas/harbour-pilot/addendum"
    assert framework.fields.extensions["provenance"]["date"] == "2024-03-18"
    # Marked by front matter (type: addendum, persona: ...) rather than by file name.
    court = load_card(tmp_path / "cards" / "court-interpreter-framework.md")
    assert court.fields.framework[0].startswith("Grice's maxims")


def test_addenda_pair_only_when_the_pairing_is_not_a_guess(tmp_path: Path) -> None:
    write_up = (WRITEUPS / "harbour-pilot.md").read_text()
    addendum = (WRITEUPS / "harbour-pilot-addendum.md").read_text()
    lone = read_foreign(write_file(tmp_path / "lone-addendum.md", addendum))
    [card] = pair_write_ups(lone)
    assert card.fields.name == "ines-caldeira-harbour-pilot-addendum"
    assert "imported on its own" in card.notes[-1]
    # Two write-ups claim the same persona: neither is paired with the one addendum.
    twin = write_file(
        tmp_path / "twin.md", write_up.replace("title:", "persona: harbour-pilot\ntitle:", 1)
    )
    cards = [
        *read_foreign(WRITEUPS / "harbour-pilot.md"),
        *read_foreign(twin),
        *read_foreign(WRITEUPS / "harbour-pilot-addendum.md"),
    ]
    paired = pair_write_ups(cards)
    assert [c.fields.name for c in paired] == [c.fields.name for c in cards]
    assert "2 write-ups and 1 addenda" in paired[2].notes[-1]


def _reply(body: dict) -> str:  # type: ignore[type-arg]
    digest = hashlib.sha256(json.dumps([body["model"], body["messages"]]).encode()).digest()
    words = ["tide", "pilot", "water", "rules", "court", "words", "night", "risk", "trust", "ice"]
    text = " ".join(words[b % len(words)] for b in digest[:8])
    return text + ("\nyes | 0.7 | none" if "STANCE" in body["messages"][-1]["content"] else "")


def test_council_experiment_variants_takes_the_imported_pairs_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = tmp_path / "personas"
    main(["personas", "import", str(WRITEUPS), "--to", str(cards)])
    assert "imported 6 cards from 6 files" in capsys.readouterr().err
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(cards))
    questions = write_file(tmp_path / "questions.txt", "Should the port run at night?\n")
    with FakeProvider(_reply) as provider:
        args = [
            "experiment",
            "variants",
            "--pairs",
            "harbour-pilot,glacier-hydrologist",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={provider.api_base}",
            "--questions",
            str(questions),
            "--samples",
            "2",
            "--out",
            str(tmp_path / "exp"),
            "--protocol",
            "quick",
            "--embedder",
            "fake",
            "--json",
        ]
        assert main(args) == 0
        prompts = [r["messages"][0]["content"] for r in provider.requests]
    arms = {arm["name"]: arm["personas"] for arm in json.loads(capsys.readouterr().out)["arms"]}
    assert arms["topic"] == ["harbour-pilot-topic", "glacier-hydrologist-topic"]
    assert arms["framework"] == ["harbour-pilot-framework", "glacier-hydrologist-framework"]
    assert any("Perrow's normal accidents" in prompt for prompt in prompts)
    assert any("Ostrom's commons" in prompt for prompt in prompts)


# --- Subagent front matter as Claude Code reads it ----------------------------------------------


def test_subagents_with_unquoted_colons_import_as_claude_code_reads_them() -> None:
    cards = imported_cards(SUBAGENTS)
    assert len(cards) == 4  # before this change: 1 of 4 (3 refused as invalid YAML)
    by_name = {card.fields.name: card for card in cards}
    analyst = by_name["ab-test-analyst"]
    assert analyst.fields.extensions["claude_code"]["description"] == (
        "Reads experiment results and says what they support. Triggers on: 'analyze A/B "
        "test', 'is this significant', 'lift estimate'."
    )
    assert analyst.notes[0] == (
        "front matter line 3 (description) is not strict YAML: read as Claude Code reads it, "
        "one key a line, the value the rest of the line"
    )
    assert analyst.fields.tier == "mid" and analyst.fields.blind_spots  # the rest still maps
    # A wrapped description is one value; the block list under the next key stays a list.
    schema = by_name["schema-reviewer"].fields.extensions["claude_code"]
    assert schema["description"].endswith("or changes an index on a large table.")
    assert schema["tools"] == ["Read", "Grep"]
    assert by_name["incident-commander"].notes == []  # strict YAML needs no note


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("name: a\ntools: [Read, Grep\n", r"agent.md:\d: field 'tools': invalid YAML"),
        ("name: a\ndescription: \"unterminated\n", r"agent.md:\d: field 'description': invalid"),
        ("name: a\ncouncil:\n  figure: x\n   domain: y\n", r"agent.md:\d: field 'council': inva"),
        ("name: a\ndescription: x\n  bad: nested\n", r"agent.md:\d: field 'description': inv"),
    ],
)  # fmt: skip
def test_front_matter_that_is_truly_unreadable_is_refused_on_one_line(
    tmp_path: Path, front: str, expected: str
) -> None:
    path = write_file(tmp_path / "agent.md", f"---\n{front}---\nYou review things.\n")
    with pytest.raises(CardError, match=expected) as err:
        read_foreign(path)
    assert "\n" not in str(err.value)
