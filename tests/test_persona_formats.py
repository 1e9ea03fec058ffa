"""Importing Claude Code subagents, Character Cards (V1/V2/V3, JSON and PNG) and CrewAI agents,
exporting Character Card V2, round trips, and hostile or malformed foreign files."""

from __future__ import annotations

import base64
import copy
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from council.base.errors import CardError
from council.personas import find_persona, load_card, system_prompt
from council.personas.formats import (
    CLAUDE_MODELS,
    EXPORT_TOPIC,
    export_chara_card_v2,
    read_foreign,
    write_imported,
)
from council.personas.lint import lint_paths

V2_CARD: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Aria Vance",
        "description": "{{char}} is the chief engineer of a failing generation ship. She trusts "
        "gauges over speeches and tells {{user}} what the reactor can really take.",
        "personality": "gruff, loyal, practical",
        "scenario": "Deck 7, hour 19 of a coolant leak; {{user}} asks for a decision.",
        "first_mes": "*wipes her hands* {{user}}. Make it quick.",
        "mes_example": "<START>\n{{user}}: Can we hold?\n{{char}}: Not past dawn.",
        "creator_notes": "Hard science fiction engineer.",
        "system_prompt": "Write {{char}}'s next reply. {{original}}",
        "post_history_instructions": "Stay terse.",
        "alternate_greetings": ["Reactor's fine. You're not."],
        "character_book": {"name": "Ship lore", "entries": [{"keys": ["reactor"], "content": "x"}]},
        "tags": ["sci-fi", "engineer"],
        "creator": "someone",
        "character_version": "1.4",
        "extensions": {
            "talkativeness": "0.4",
            "fav": False,
            "depth_prompt": {"prompt": "{{char}} is tired.", "depth": 4, "role": "system"},
        },
    },
}

V3_ONLY = {
    "nickname": "Vance",
    "creator_notes_multilingual": {"fr": "Ingénieure."},
    "source": ["https://example.invalid/aria"],
    "group_only_greetings": ["Everyone, listen."],
    "creation_date": 1700000000,
    "modification_date": 1710000000,
    "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
}

CLAUDE_AGENT = """\
---
name: Security Auditor
description: Audits designs for attack surface. Use proactively before a release.
tools: Read, Grep, Glob
model: opus
color: red
council:
  figure: Ada Okafor
  domain: [security engineering, threat modelling]
  polarity: adversarial
  polarity_pairs: [popper]
  provider_affinity: [anthropic]
  reasoning_method: "STRIDE threat modelling: spoofing, tampering, disclosure, elevation"
  asks: ["Who gains if this fails?"]
  blind_spots: ["Usability costs of controls"]
---
You are a security auditor. Flag anything like {{ config.secret }} in templates.
Never run code.
"""

CREW_AGENTS = """\
researcher:
  role: >
    {topic} Senior Data Researcher
  goal: >
    Uncover cutting-edge developments in {topic} for {audience}
  backstory: >
    You're a seasoned researcher with a knack for uncovering the latest
    developments in {topic}. Known for finding what others miss.
  llm: openai/gpt-4o-mini
  allow_delegation: false
reporting_analyst:
  role: Reporting Analyst
  goal: Create detailed reports based on {topic} data analysis
  backstory: You're a meticulous analyst with a keen eye for detail.
  llm: gpt-4o
"""


def imported(tmp_path: Path, name: str, text: str) -> list[Path]:
    """Import a foreign file written under tmp_path; return the written card files."""
    source = write_file(tmp_path / name, text)
    return write_imported(read_foreign(source), tmp_path / "cards")


def png_with(chunks: dict[str, dict[str, Any]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    for key, card in chunks.items():
        out += chunk(b"tEXt", key.encode() + b"\0" + base64.b64encode(json.dumps(card).encode()))
    return out + chunk(b"IEND", b"")


# --- Character Cards -----------------------------------------------------------------------------


def test_character_card_v2_import_maps_fields_and_macros(tmp_path: Path) -> None:
    [path] = imported(tmp_path, "aria.json", json.dumps(V2_CARD))
    assert path.name == "aria-vance.md"
    card = load_card(path)
    fields = card.fields
    assert fields.figure == "Aria Vance"  # the display name survives the slug
    assert fields.description.startswith("Aria Vance is the chief engineer")
    assert fields.traits == ["gruff", "loyal", "practical"]
    assert fields.tags == ["sci-fi", "engineer"]
    kept = fields.extensions["chara_card"]
    assert kept["extensions"] == V2_CARD["data"]["extensions"]
    assert kept["data"]["first_mes"] == V2_CARD["data"]["first_mes"]
    prompt = system_prompt(card, "Vent the reactor?")
    assert "Write Aria Vance's next reply." in prompt
    assert "tells the council what the reactor" in prompt
    assert "{{" not in prompt and "original" not in prompt
    assert prompt.endswith("The council is deliberating: Vent the reactor?")


def test_character_card_v2_round_trip(tmp_path: Path) -> None:
    [path] = imported(tmp_path, "aria.json", json.dumps(V2_CARD))
    exported = export_chara_card_v2(load_card(path))
    assert exported["spec"] == "chara_card_v2" and exported["spec_version"] == "2.0"
    data, original = exported["data"], V2_CARD["data"]
    for key, value in original.items():
        if key != "extensions":
            assert data[key] == value, key
    extensions = dict(data["extensions"])
    assert extensions.pop("council")["figure"] == "Aria Vance"  # our fields, namespaced
    assert extensions == original["extensions"]  # unknown extensions kept as they were
    # and again: importing our own export and exporting it gives the same card
    again = imported(tmp_path / "again", "aria.json", json.dumps(exported))[0]
    assert export_chara_card_v2(load_card(again))["data"] == data


def test_character_card_v3_exports_as_v2_keeping_v3_fields(tmp_path: Path) -> None:
    v3 = copy.deepcopy(V2_CARD)
    v3["spec"], v3["spec_version"] = "chara_card_v3", "3.0"
    v3["data"] |= V3_ONLY
    [path] = imported(tmp_path, "aria.json", json.dumps(v3))
    assert load_card(path).fields.extensions["chara_card"]["spec"] == "chara_card_v3"
    data = export_chara_card_v2(load_card(path))["data"]
    assert data["extensions"]["chara_card_v3"] == V3_ONLY
    assert not set(V3_ONLY) & set(data)  # V2 data holds V2 fields only
    assert data["first_mes"] == v3["data"]["first_mes"]


def test_character_card_v1_and_png(tmp_path: Path) -> None:
    v1 = {k: V2_CARD["data"][k] for k in ("name", "description", "personality", "first_mes")}
    [path] = imported(tmp_path, "old.json", json.dumps(v1))
    assert load_card(path).fields.extensions["chara_card"]["spec"] == "chara_card_v1"
    v3 = copy.deepcopy(V2_CARD)
    v3["spec"], v3["data"]["name"] = "chara_card_v3", "Aria Three"
    png = tmp_path / "aria.png"
    png.write_bytes(png_with({"chara": V2_CARD, "ccv3": v3}))  # ccv3 wins
    [card] = read_foreign(png)
    assert card.fields.name == "aria-three"


def test_edited_card_exports_the_edits(tmp_path: Path) -> None:
    [path] = imported(tmp_path, "aria.json", json.dumps(V2_CARD))
    text = path.read_text(encoding="utf-8")
    text = text.replace("- gruff\n", "- patient\n").replace("\nYou are {{", "\nYou, {{")
    path.write_text(text, encoding="utf-8")
    data = export_chara_card_v2(load_card(path))["data"]
    assert data["personality"] == "patient, loyal, practical"
    assert data["system_prompt"].startswith("Write Aria Vance's next reply.")
    assert EXPORT_TOPIC in data["system_prompt"]
    assert data["description"] == V2_CARD["data"]["description"]  # not edited: as it was


def test_native_card_round_trips_through_character_card_v2(tmp_path: Path) -> None:
    popper = find_persona("popper")
    exported = export_chara_card_v2(popper)
    assert exported["data"]["name"] == popper.fields.figure
    assert "Karl Popper" in exported["data"]["system_prompt"]
    [path] = imported(tmp_path, "popper.json", json.dumps(exported))
    back = load_card(path)
    skip = {"extensions"}
    assert back.fields.model_dump(exclude=skip) == popper.fields.model_dump(exclude=skip)
    topic = "Should a city ban private cars from its centre?"
    assert system_prompt(back, topic) == system_prompt(popper, topic)


def test_hostile_character_card_imports_as_inert_text(tmp_path: Path) -> None:
    hostile = copy.deepcopy(V2_CARD)
    payload = "{{ ''.__class__.__mro__ }} {% for x in range(10**9) %}{% endraw %}{#"
    hostile["data"]["description"] = f"{{{{char}}}} says {payload}"
    hostile["data"]["scenario"] = "{{{char}}}"
    [path] = imported(tmp_path, "evil.json", json.dumps(hostile))
    prompt = system_prompt(load_card(path), "Q?")
    assert f"Aria Vance says {payload}" in prompt  # rendered literally, nothing ran
    assert "Scenario: {Aria Vance}" in prompt
    assert lint_paths([path]).errors == []


# --- Claude Code subagents -----------------------------------------------------------------------


def test_claude_code_agent_with_council_block(tmp_path: Path) -> None:
    [path] = imported(tmp_path, "auditor.md", CLAUDE_AGENT)
    assert path.name == "security-auditor.md"
    card = load_card(path)
    fields = card.fields
    assert fields.figure == "Ada Okafor"
    assert fields.role == "Security engineering, threat modelling"  # its domain
    assert fields.domain == "security engineering, threat modelling"
    assert fields.polarity == "adversarial"
    assert fields.description == "Audits designs for attack surface."
    assert fields.polarity_pairs == ["popper"] and fields.provider_affinity == ["anthropic"]
    assert fields.reasoning_method and fields.reasoning_method.startswith("STRIDE threat modelling")
    assert fields.asks == ["Who gains if this fails?"]
    assert fields.tags == ["security-engineering", "threat-modelling"]
    assert fields.model == CLAUDE_MODELS["opus"] and fields.tier == "high"
    meta = fields.extensions["claude_code"]  # the subagent's front matter, whole
    assert meta["tools"] == "Read, Grep, Glob" and meta["color"] == "red"
    assert meta["name"] == "Security Auditor" and meta["model"] == "opus"
    assert meta["council"]["polarity"] == "adversarial"
    prompt = system_prompt(card, "Ship it?")
    assert "Flag anything like {{ config.secret }} in templates." in prompt
    assert "Your reasoning method: STRIDE threat modelling" in prompt
    assert prompt.endswith("The council is deliberating: Ship it?")


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("sonnet", "anthropic/claude-sonnet-4-5"),
        ("haiku", "anthropic/claude-haiku-4-5"),
        ("inherit", None),
        ("claude-opus-4-1-20250805", "anthropic/claude-opus-4-1-20250805"),
        ("openai/gpt-4o", "openai/gpt-4o"),
        ("mystery", None),
    ],
)
def test_claude_code_model_table(tmp_path: Path, model: str, hint: str | None) -> None:
    text = f"---\nname: helper\ndescription: Helps.\nmodel: {model}\n---\nHelp.\n"
    [card] = read_foreign(write_file(tmp_path / "helper.md", text))
    assert card.fields.model == hint
    assert card.fields.extensions["claude_code"]["model"] == model


def test_claude_code_unknown_council_key_is_kept_with_a_note(tmp_path: Path) -> None:
    text = CLAUDE_AGENT.replace("  polarity: adversarial\n", "  polarity: adversarial\n  mood: x\n")
    [card] = read_foreign(write_file(tmp_path / "auditor.md", text))
    assert card.notes == ["kept council.mood under extensions.claude_code"]
    assert card.fields.extensions["claude_code"]["council"]["mood"] == "x"
    text = CLAUDE_AGENT.replace("polarity_pairs: [popper]", "polarity_pairs: 5")
    with pytest.raises(CardError, match="field 'council.polarity_pairs'") as err:
        read_foreign(write_file(tmp_path / "auditor.md", text))
    assert err.value.line == 11


# --- CrewAI --------------------------------------------------------------------------------------


def test_crewai_agents_become_cards_with_template_variables(tmp_path: Path) -> None:
    paths = imported(tmp_path, "agents.yaml", CREW_AGENTS)
    assert [p.name for p in paths] == ["researcher.md", "reporting-analyst.md"]
    researcher = load_card(paths[0])
    assert researcher.fields.role == "{topic} Senior Data Researcher"
    assert researcher.fields.variables == {"audience": "<audience>"}  # topic: the council's
    assert researcher.fields.model == "openai/gpt-4o-mini"
    assert researcher.fields.extensions["crewai"]["allow_delegation"] is False
    prompt = system_prompt(researcher, "open-source AI")
    assert prompt.startswith("You are open-source AI Senior Data Researcher. You're a seasoned")
    assert (
        "Your personal goal is: Uncover cutting-edge developments in open-source AI for "
        "<audience>" in prompt
    )
    analyst = load_card(paths[1])
    assert analyst.fields.model is None  # "gpt-4o" is not a litellm provider/model string
    assert analyst.fields.extensions["crewai"]["llm"] == "gpt-4o"
    codes = {(f.name, f.code) for f in lint_paths(paths).findings}
    assert ("researcher", "placeholder-variable") in codes
    assert not lint_paths(paths).errors


def test_crewai_placeholders_that_would_clash_are_renamed(tmp_path: Path) -> None:
    text = "critic:\n  role: Critic of {name}\n  goal: Judge {if} and {{literal}}\n"
    [path] = imported(tmp_path, "agents.yml", text)
    card = load_card(path)
    assert card.fields.variables == {"name_input": "<name>", "if_input": "<if>"}
    prompt = system_prompt(card, "Q")
    assert prompt.startswith("You are Critic of <name>.")
    assert "Judge <if> and {{literal}}" in prompt


# --- Malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.json", '{"spec": "chara_card_v2",\n "data": {"name": }}', r"json:2: invalid JSON"),
        ("bad.json", '{"spec": "chara_card_v9", "data": {}}', r"field 'spec': expected"),
        ("bad.json", '{"spec": "chara_card_v2", "data": {"name": ""}}', r"field 'data.name'"),
        ("bad.json", '{"spec": "chara_card_v2", "data": {"name": "A", "personality": 5}}',
         r"field 'data.personality': must be a string"),
        ("bad.json", "[1, 2]", r"must be a JSON object"),
        ("agents.yaml", "a:\n  role: [unclosed\n", r"agents.yaml:3: invalid YAML"),
        ("agents.yaml", "a: just text\n", r"field 'a': an agent must be a mapping"),
        ("agents.yaml", "a:\n  goal: no role\n", r"agents.yaml:1: field 'a.role'"),
        ("agents.yaml", "- a\n- b\n", r"expected a mapping of agent names"),
        ("agent.md", "no front matter", r"needs a .# Title. line"),
        ("agent.md", "---\nname: [x\n---\nbody\n", r"agent.md:[23]: field 'name': invalid YAML"),
        ("agent.md", "---\ndescription: no name\n---\nbody\n", r"field 'name'"),
        ("image.png", "not a png", r"not a PNG file"),
        ("notes.txt", "plain words", r"unknown format"),
    ],
)  # fmt: skip
def test_malformed_foreign_files_are_one_line_errors(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write_file(tmp_path / name, text)
    with pytest.raises(CardError, match=expected) as err:
        read_foreign(path)
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_writing_refuses_collisions_and_overwrites(tmp_path: Path) -> None:
    source = write_file(tmp_path / "aria.json", json.dumps(V2_CARD))
    cards = read_foreign(source)
    with pytest.raises(CardError, match="is also named 'aria-vance'"):
        write_imported(cards + cards, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written when anything is wrong
    write_imported(cards, tmp_path / "out")
    with pytest.raises(CardError, match="already exists; use --force"):
        write_imported(cards, tmp_path / "out")
    assert write_imported(cards, tmp_path / "out", force=True) == [tmp_path / "out/aria-vance.md"]


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_alias_bombs_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    bomb = "---\nname: bomb\ndescription: x\n" + "\n".join(levels) + "\n---\nx\n"
    with pytest.raises(CardError, match="expands to more than"):
        read_foreign(write_file(tmp_path / "bomb.md", bomb))
    with pytest.raises(CardError, match="nested too deeply"):
        read_foreign(write_file(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("{role: x}", "would shadow"),
        ("{topic: x}", "would shadow"),
        ("{bad-name: x}", "not a valid template variable name"),
        ("{for: x}", "not a valid template variable name"),
        ("{city: [1]}", "valid string"),
    ],
)
def test_variables_must_be_names_that_do_not_shadow(
    tmp_path: Path, variables: str, message: str
) -> None:
    text = f"---\nname: v\ndescription: d\nrole: r\nvariables: {variables}\n---\n{{{{ topic }}}}\n"
    with pytest.raises(CardError, match=message) as err:
        load_card(write_file(tmp_path / "v.md", text))
    assert err.value.field is not None and err.value.field.startswith("variables")
    assert err.value.line == 5
