"""Persona cards: the shipped library, validation errors with file/line/field, the sandbox."""

from __future__ import annotations

import pytest

from council.base.errors import CardError, UnknownNameError
from council.personas import available_personas, find_persona, load_card, system_prompt

VALID_FRONT = """---
name: {name}
description: A test persona.
role: Tester
traits: [careful]
framework: ["Boundary analysis: test the edges"]
asks: ["What breaks at the edge?"]
blind_spots: [the middle]
polarity_pairs: []
tags: [test]
---
"""


def card_text(name: str = "tester", body: str = "You are {{ role }}. Topic: {{ topic }}") -> str:
    return VALID_FRONT.format(name=name) + body


def test_shipped_cards_load_render_and_pair_up() -> None:
    cards = available_personas()
    assert {"popper", "kuhn", "hayek", "keynes", "meadows", "taleb", "chair"} <= set(cards)
    for name, path in cards.items():
        card = load_card(path)
        prompt = system_prompt(card, "Should cities ban cars?")
        assert "Should cities ban cars?" in prompt
        assert "{{" not in prompt and "{%" not in prompt
        if name != "chair":
            assert card.fields.asks and card.fields.blind_spots
            # Topic-labelled variants exist to be compared with framework-grounded ones.
            assert card.fields.framework or "variant-topic" in card.fields.tags
            if "household" not in card.fields.tags:  # household roles are roles, not people
                assert card.fields.figure and card.fields.figure.split()[0] in prompt
            for other in card.fields.polarity_pairs:
                assert name in load_card(cards[other]).fields.polarity_pairs  # pairs are mutual


def test_card_fields_and_body(write) -> None:
    card = load_card(write("tester.md", card_text()))
    assert card.name == "tester"
    assert card.fields.traits == ["careful"]
    assert card.body_line == 12
    assert system_prompt(card, "Q?") == "You are Tester. Topic: Q?"


def test_invalid_yaml_names_file_and_line(write) -> None:
    path = write("tester.md", card_text().replace("traits: [careful]", "traits: [careful"))
    with pytest.raises(CardError) as err:
        load_card(path)
    message = str(err.value)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message
    assert err.value.line is not None and 5 <= err.value.line <= 7


def test_unknown_field_names_field_and_line(write) -> None:
    path = write("tester.md", card_text().replace("tags: [test]", "tags: [test]\nmood: sunny"))
    with pytest.raises(CardError) as err:
        load_card(path)
    assert err.value.field == "mood"
    assert err.value.line == 11
    assert "unknown field" in str(err.value)
    assert str(err.value) == f"{path}:11: field 'mood': unknown field (not allowed here)"


def test_wrong_type_names_field_and_line(write) -> None:
    path = write("tester.md", card_text().replace("traits: [careful]", "traits: 5"))
    with pytest.raises(CardError) as err:
        load_card(path)
    assert err.value.field == "traits"
    assert err.value.line == 5


def test_nested_wrong_type_points_at_the_item(write) -> None:
    path = write("tester.md", card_text().replace("asks: [", "asks: [[1, 2], "))
    with pytest.raises(CardError) as err:
        load_card(path)
    assert err.value.field == "asks.0"
    assert err.value.line == 7


def test_missing_front_matter_and_name_mismatch(write) -> None:
    with pytest.raises(CardError, match="missing YAML front matter"):
        load_card(write("plain.md", "You are nobody."))
    with pytest.raises(CardError, match="must match the file name"):
        load_card(write("other.md", card_text(name="tester")))
    with pytest.raises(CardError, match="field 'name'"):
        load_card(write("Bad Name.md", card_text(name="Bad Name")))


def test_model_hint_must_be_a_litellm_string(write) -> None:
    path = write("tester.md", card_text().replace("tags: [test]", "tags: [test]\nmodel: gpt4"))
    with pytest.raises(CardError, match="provider/model") as err:
        load_card(path)
    assert err.value.field == "model"


def test_template_syntax_error_names_the_file_line(write) -> None:
    body = "Line one.\nLine two {% if %}\n"
    card = load_card(write("tester.md", card_text(body=body)))
    with pytest.raises(CardError) as err:
        system_prompt(card, "Q?")
    assert err.value.line == card.body_line + 1
    assert "template syntax error" in str(err.value)


def test_undefined_variable_is_an_error_not_an_empty_string(write) -> None:
    card = load_card(write("tester.md", card_text(body="Hello {{ nickname }}")))
    with pytest.raises(CardError, match="undefined variable.*nickname.*known: .*role"):
        system_prompt(card, "Q?")


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ role.__class__.__init__.__globals__ }}",
        "{{ traits.append('x') }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_refuses_python_internals(write, body: str) -> None:
    card = load_card(write("tester.md", card_text(body=body)))
    with pytest.raises(CardError, match="sandbox|undefined"):
        system_prompt(card, "Q?")


def test_unknown_persona_lists_the_available_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        find_persona("nobody")
    assert "unknown persona 'nobody'" in str(err.value)
    assert "popper" in str(err.value)


def test_cards_on_the_search_path_shadow_shipped_ones(tmp_path, monkeypatch) -> None:
    (tmp_path / "popper.md").write_text(card_text(name="popper"), encoding="utf-8")
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(tmp_path))
    assert find_persona("popper").path == tmp_path / "popper.md"
