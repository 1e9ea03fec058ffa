"""Protocol files: shipped protocols compile; malformed ones fail naming file, line and stage."""

from __future__ import annotations

import pytest

from council.base.errors import ProtocolError, UnknownNameError
from council.protocols import available_protocols, find_protocol, load_protocol_file

BASE = """\
name: test
description: A test protocol.
stages:
  - id: opening
    kind: statement
    prompt: "{{ question }}"
  - id: cross
    kind: response
    sees: [opening]
    anonymize: true
    prompt: Respond.
  - id: verdict
    kind: synthesis
    sees: [opening, cross]
    prompt: Synthesise.
"""


def test_shipped_protocols_compile_to_graphs() -> None:
    names = set(available_protocols())
    assert {"quick", "council"} <= names
    council = find_protocol("council")
    assert [s.id for s in council.order()] == ["opening", "cross_examination", "verdict"]
    assert set(council.graph.edges) == {
        ("opening", "cross_examination"),
        ("opening", "verdict"),
        ("cross_examination", "verdict"),
    }
    assert council.synthesis.id == "verdict"
    assert len(council.content_hash) == 64
    quick = find_protocol("quick")
    assert [s.kind for s in quick.order()] == ["statement", "synthesis"]


def test_a_valid_file_compiles(write) -> None:
    protocol = load_protocol_file(write("test.yaml", BASE))
    assert protocol.stage("cross").anonymize  # type: ignore[union-attr]
    assert protocol.prompt_line("opening") == 6


@pytest.mark.parametrize(
    ("change", "line", "field", "message"),
    [
        (("sees: [opening]\n    anonymize", "sees: [openin]\n    anonymize"), 9,
         "stage 'cross'.sees", "undefined stage 'openin'"),
        (("anonymize: true", "anonymize: true\n    colour: red"), 11,
         "stage 'cross'.colour", "unknown field"),
        (("kind: response", "kind: debate"), 8, "stage 'cross'.kind", "does not match any"),
        (("anonymize: true", "anonymize: maybe"), 10, "stage 'cross'.anonymize", "boolean"),
        (("id: cross", "id: opening"), 7, "stage 'opening'.id", "duplicate stage id"),
        (("id: cross", "id: Cross!"), 7, "stage 'Cross!'.id", "should match pattern"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_stage(write, change, line, field, message) -> None:
    path = write("test.yaml", BASE.replace(*change))
    with pytest.raises(ProtocolError) as err:
        load_protocol_file(path)
    assert err.value.path == path
    assert err.value.line == line
    assert err.value.field == field
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: field '{field}'")


def test_a_cycle_is_refused_with_its_stages(write) -> None:
    text = BASE.replace(
        "kind: response\n    sees: [opening]", "kind: response\n    sees: [verdict]"
    )
    with pytest.raises(
        ProtocolError, match=r"cycle \((cross -> verdict -> cross|verdict -> cross -> verdict)\)"
    ):
        load_protocol_file(write("test.yaml", text))


def test_synthesis_rules(write) -> None:
    two = BASE + "  - id: again\n    kind: synthesis\n    sees: [verdict]\n    prompt: x\n"
    with pytest.raises(ProtocolError, match="exactly one synthesis stage, found 2"):
        load_protocol_file(write("two.yaml", two))
    none = BASE.split("  - id: verdict")[0]
    with pytest.raises(ProtocolError, match="found 0"):
        load_protocol_file(write("none.yaml", none))
    after = BASE + "  - id: late\n    kind: response\n    sees: [verdict]\n    prompt: x\n"
    with pytest.raises(ProtocolError, match="synthesis stage must be last"):
        load_protocol_file(write("after.yaml", after))


def test_stages_that_feed_nothing_are_refused(write) -> None:
    text = BASE.replace(
        "  - id: verdict", "  - id: aside\n    kind: statement\n    prompt: x\n  - id: verdict"
    )
    with pytest.raises(ProtocolError, match="feeds nothing into the synthesis: aside") as err:
        load_protocol_file(write("test.yaml", text))
    assert err.value.line == 12


def test_blind_statements_cannot_see(write) -> None:
    text = BASE.replace("kind: statement\n", "kind: statement\n    sees: [cross]\n")
    with pytest.raises(ProtocolError, match="stage 'opening'': a statement stage is blind"):
        load_protocol_file(write("test.yaml", text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: test\ndescription: x\nstages: []\n", "stages"),
        ("name: test\nstages: [{id: a, kind: statement, prompt: x}]\n", "description"),
    ],
)
def test_malformed_files(write, text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        load_protocol_file(write("test.yaml", text))


def test_unknown_protocol_lists_the_available_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown protocol 'nope'; available: .*council"):
        find_protocol("nope")


def test_a_broken_prompt_fails_at_compile_time_with_its_line(write) -> None:
    text = BASE.replace("    prompt: Respond.", "    prompt: |\n      Fine line.\n      {% if %}")
    with pytest.raises(ProtocolError, match="template syntax error") as err:
        load_protocol_file(write("test.yaml", text))
    assert err.value.line == 13 and err.value.field == "stage 'cross'.prompt"
