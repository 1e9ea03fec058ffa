"""Property-based tests of card and protocol parsing.

The property: every input, however malformed, either parses or ends in the project's own error
(``CardError``/``ProtocolError``) whose message is one non-empty line starting with the file
name; never any other exception. Examples are derandomized so CI is reproducible; for a deeper
local search run ``COUNCIL_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`` (random seeds).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from council.base.errors import CardError, CouncilError, ProtocolError
from council.personas import parse_card, system_prompt
from council.personas.card import CardFields
from council.protocols import compile_protocol

REPO = Path(__file__).resolve().parent.parent
CARD_PATH = Path("fuzz.md")
PROTOCOL_PATH = Path("fuzz.yaml")

_DEEP = int(os.environ.get("COUNCIL_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=_DEEP or examples,
        deadline=None,
        derandomize=not _DEEP,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def parses_or_fails_cleanly(call: Callable[[], object], path: Path) -> CouncilError | None:
    """Run ``call``; a CouncilError must be one non-empty line naming ``path``."""
    try:
        call()
    except CouncilError as exc:
        message = str(exc)
        assert message.startswith(f"{path}"), message
        assert message.removeprefix(f"{path}").lstrip(":0123456789 ").strip(), message
        assert len(message.splitlines()) == 1, message
        return exc
    return None


def card_round_trip(text: str, topic: str = "Should the city ban cars?") -> None:
    def call() -> None:
        card = parse_card(text, CARD_PATH)
        system_prompt(card, topic)

    error = parses_or_fails_cleanly(call, CARD_PATH)
    assert error is None or isinstance(error, CardError), repr(error)


def protocol_compiles(text: str) -> None:
    def call() -> None:
        protocol = compile_protocol(text, PROTOCOL_PATH)
        protocol.speaking_stages()  # a protocol that compiles can be ordered
        assert protocol.synthesis.id in protocol.stages

    error = parses_or_fails_cleanly(call, PROTOCOL_PATH)
    assert error is None or isinstance(error, ProtocolError), repr(error)


# -- building blocks --------------------------------------------------------------------------

JINJA_BITS = ["{{", "}}", "{%", "%}", "{#", "#}", "{{ topic }}", "{% for x in traits %}"]
JINJA_BITS += ["{% endfor %}", "{{ nope }}", "{{ role.__class__ }}", "{{ 1/0 }}", "{% if %}"]
JINJA_BITS += ["{{ traits | join(', ') }}", "{{ 'x' * 10 }}", "{% raw %}", "{{ loop.index }}"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "yes", "no", "null", "~", "[", "{", "&a", "*a", "!!python/none", "\n"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
body_text = st.lists(st.one_of(st.text(max_size=15), st.sampled_from(JINJA_BITS)), max_size=8).map(
    "".join
)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def card_text(front: str, body: str) -> str:
    return f"---\n{front}---\n{body}"


VALID_CARD: dict[str, Any] = {
    "name": "fuzz",
    "description": "A persona for fuzzing.",
    "role": "Tester",
    "figure": "Ada Fuzz (1900-1999)",
    "traits": ["careful", "curious"],
    "framework": ["Boundary analysis: test the edges"],
    "asks": ["What breaks at the edge?"],
    "blind_spots": ["the middle"],
    "polarity_pairs": ["other"],
    "model": "openai/gpt-4o-mini",
    "provider_affinity": ["anthropic"],
    "tags": ["test"],
    "variables": {"era": "today"},
    "extensions": {"anything": [1, 2]},
}
VALID_BODY = (
    "You are {{ figure }}, {{ role }} of {{ era }}. Topic: {{ topic }}\n"
    "{% for f in framework %}- {{ f }}\n{% endfor %}"
    "{{ traits | join(', ') }}\n"
)
CARD_FIELDS = sorted(CardFields.model_fields)

PROTOCOL_FILES = sorted((REPO / "protocols").glob("*.yaml"))
PROTOCOL_SEEDS = {path.name: path.read_text(encoding="utf-8") for path in PROTOCOL_FILES}
STAGE_KINDS = ["statement", "response", "summary", "vote", "ranking", "guard", "synthesis", "loop"]
REF_FIELDS = ["sees", "after", "checks"]
NUMBER_FIELDS = ["threshold", "tolerance", "rounds", "agreement_above", "dissenters_below"]
NUMBER_FIELDS += ["max_tokens", "words", "min_turns", "version", "seats"]
numbers = st.one_of(
    st.integers(min_value=-3, max_value=60),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2 / 3, 1.0, 1.5, -0.0, 10**400]),
)


# -- cards ------------------------------------------------------------------------------------


def test_the_valid_card_seed_is_valid() -> None:
    card = parse_card(card_text(dump(VALID_CARD), VALID_BODY), CARD_PATH)
    assert "Ada Fuzz" in system_prompt(card, "a topic")


@fuzz(300)
@given(st.text())
def test_any_text_as_a_card(text: str) -> None:
    card_round_trip(text)


@fuzz(150)
@given(front=st.text(), body=body_text)
def test_any_text_between_front_matter_fences(front: str, body: str) -> None:
    card_round_trip(card_text(front if front.endswith("\n") else front + "\n", body))


@fuzz(300)
@given(
    fields=st.dictionaries(st.one_of(st.sampled_from(CARD_FIELDS), keys), values, max_size=8),
    body=body_text,
)
def test_random_front_matter_mappings(fields: dict[Any, Any], body: str) -> None:
    card_round_trip(card_text(dump(fields), body))


# Raw YAML that the safe loader parses but cannot always build, or builds deeply.
RAW_YAML = ["2001-02-30", "2001-13-45 25:61:61", "!!int x", "!!float x", "!!binary a", "1:2:3"]
RAW_YAML += [
    "!!timestamp x",
    "!!python/none ''",
    "&a [*a]",
    "*nowhere",
    "<<: 1",
    "? [a]",
    "9" * 5000,
]
RAW_YAML += [
    "[" * 3000 + "]" * 3000,
    "{a: " * 800 + "1" + "}" * 800,
    "|\n  block",
    ">-",
    "'",
    '"\\x"',
]
raw_yaml = st.one_of(st.text(max_size=20), st.sampled_from(RAW_YAML))
field_names = st.one_of(st.sampled_from(CARD_FIELDS), st.text(max_size=10))


@fuzz(200)
@given(pairs=st.lists(st.tuples(field_names, raw_yaml), max_size=8))
def test_yaml_ish_key_value_lines(pairs: list[tuple[str, str]]) -> None:
    front = "".join(f"{key}: {value}\n" for key, value in pairs)
    card_round_trip(card_text(front, "{{ topic }}"))


@fuzz(100)
@given(seed=st.sampled_from(sorted(PROTOCOL_SEEDS)), data=st.data())
def test_raw_yaml_values_in_a_protocol(seed: str, data: st.DataObject) -> None:
    lines = PROTOCOL_SEEDS[seed].splitlines(keepends=True)
    at = data.draw(st.sampled_from([i for i, line in enumerate(lines) if ": " in line]))
    key = lines[at].partition(": ")[0]
    lines[at] = f"{key}: {data.draw(raw_yaml)}\n"
    protocol_compiles("".join(lines))


@st.composite
def mutated_cards(draw: st.DrawFn) -> str:
    fields = copy.deepcopy(VALID_CARD)
    body = VALID_BODY
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["drop", "retype", "add", "garbage", "variables"]))
        if operation == "drop" and fields:
            fields.pop(draw(st.sampled_from(list(fields))))
        elif operation == "retype":
            fields[draw(st.sampled_from(CARD_FIELDS))] = draw(values)
        elif operation == "add":
            fields[draw(keys)] = draw(values)
        elif operation == "variables":
            fields["variables"] = draw(st.dictionaries(keys, values, max_size=3))
        else:
            at = draw(st.integers(0, len(body)))
            body = body[:at] + draw(st.sampled_from(JINJA_BITS)) + body[at:]
    text = card_text(dump(fields), body)
    if draw(st.booleans()):  # duplicate a front matter line (YAML keeps the last)
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(1, max(1, len(lines) - 1)))
        lines.insert(at, lines[at - 1])
        text = "".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@fuzz(400)
@given(text=mutated_cards(), topic=st.text(max_size=30))
def test_mutations_of_a_valid_card(text: str, topic: str) -> None:
    card_round_trip(text, topic)


# -- protocols --------------------------------------------------------------------------------


def test_the_protocol_seeds_compile() -> None:
    assert len(PROTOCOL_SEEDS) >= 5
    for text in PROTOCOL_SEEDS.values():
        compile_protocol(text, PROTOCOL_PATH)


@fuzz(300)
@given(st.text())
def test_any_text_as_a_protocol(text: str) -> None:
    protocol_compiles(text)


@fuzz(200)
@given(st.dictionaries(st.one_of(st.sampled_from(["name", "stages", "panel"]), keys), values))
def test_random_mappings_as_a_protocol(data: dict[Any, Any]) -> None:
    protocol_compiles(dump(data))


def stage_dicts(data: Any) -> Iterator[dict[str, Any]]:
    """Every stage mapping of a protocol, loops' bodies included, in file order."""
    stages = data.get("stages") if isinstance(data, dict) else None
    for stage in stages if isinstance(stages, list) else []:
        if isinstance(stage, dict):
            yield stage
            yield from stage_dicts(stage)


def containers(node: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key or index) for every value in a nested structure."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        yield node, key
        if isinstance(value, dict | list):
            yield from containers(value)


@st.composite
def mutated_protocols(draw: st.DrawFn) -> str:
    seed = draw(st.sampled_from(sorted(PROTOCOL_SEEDS)))
    data = yaml.safe_load(PROTOCOL_SEEDS[seed])
    for _ in range(draw(st.integers(1, 4))):
        stages = list(stage_dicts(data))
        ids = [s.get("id") for s in stages] + ["nowhere", "", 3, None]
        operation = draw(
            st.sampled_from(
                ["delete", "replace", "kind", "reference", "cycle", "number", "duplicate", "move"]
            )
        )
        slots = list(containers(data))
        if operation in ("delete", "replace") and slots:
            container, key = draw(st.sampled_from(slots))
            if operation == "delete":
                del container[key]
            else:
                container[key] = draw(values)
        elif not stages:
            data["stages"] = draw(values)
        elif operation == "kind":
            draw(st.sampled_from(stages))["kind"] = draw(st.sampled_from(STAGE_KINDS) | scalars)
        elif operation == "reference":
            stage = draw(st.sampled_from(stages))
            field = draw(st.sampled_from(REF_FIELDS))
            refs = draw(st.lists(st.sampled_from(ids), max_size=3))
            stage[field] = refs[0] if field == "checks" and refs else refs
            if draw(st.booleans()):
                until = {"vote": draw(st.sampled_from(ids)), "agreement": 0.5}
                stage["until"] = draw(
                    st.sampled_from([until, {"moderator": draw(st.sampled_from(ids))}])
                )
        elif operation == "cycle":
            first, later = sorted(
                draw(st.lists(st.sampled_from(range(len(stages))), min_size=2, max_size=2))
            )
            stage = stages[first]
            stage.setdefault("sees", [])
            if isinstance(stage["sees"], list):
                stage["sees"].append(stages[later].get("id"))
        elif operation == "number":
            target = draw(st.sampled_from([*stages, data, data.setdefault("panel", {})]))
            if isinstance(target, dict):
                target[draw(st.sampled_from([*NUMBER_FIELDS, "min", "max"]))] = draw(numbers)
        elif operation == "duplicate":
            draw(st.sampled_from(stages))["id"] = draw(st.sampled_from(ids))
        else:  # move a stage into a loop, or out to the top level
            stage = draw(st.sampled_from(stages))
            for holder in [data, *stages]:
                if isinstance(holder.get("stages"), list) and stage in holder["stages"]:
                    holder["stages"].remove(stage)
            loops = [s for s in stages if isinstance(s.get("stages"), list) and s is not stage]
            target = draw(st.sampled_from([data, *loops]))
            if isinstance(target.get("stages"), list):
                target["stages"].insert(draw(st.integers(0, len(target["stages"]))), stage)
    return dump(data)


@fuzz(500)
@given(mutated_protocols())
def test_mutations_of_shipped_protocols(text: str) -> None:
    protocol_compiles(text)


@fuzz(150)
@given(seed=st.sampled_from(sorted(PROTOCOL_SEEDS)), data=st.data())
def test_truncated_and_spliced_protocol_files(seed: str, data: st.DataObject) -> None:
    text = PROTOCOL_SEEDS[seed]
    cut = data.draw(st.integers(0, len(text)))
    insert = data.draw(
        st.one_of(st.text(max_size=10), st.sampled_from(["\n  - ", ": ", "\t", "]"]))
    )
    protocol_compiles(text[:cut] + insert + text[cut:] if data.draw(st.booleans()) else text[:cut])


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: p.stem)
def test_shipped_protocols_survive_a_dump_round_trip(path: Path) -> None:
    compile_protocol(dump(yaml.safe_load(path.read_text(encoding="utf-8"))), PROTOCOL_PATH)


# -- regressions: bugs the fuzzing found --------------------------------------------------------

CARD_HEAD = "---\nname: fuzz\ndescription: d\nrole: r\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2001-02-30", "cannot read '2001-02-30' as !!timestamp: day is out of range for month"),
        ("!!timestamp soon", "cannot read 'soon' as !!timestamp"),  # was AttributeError
        ("!!bool maybe", "cannot read 'maybe' as !!bool"),  # was KeyError
        ("!!int ''", "cannot read '' as !!int"),  # was IndexError
        ("!!float x", "cannot read 'x' as !!float: could not convert string to float: 'x'"),
        ("9" * 5000, "as !!int: Exceeds the limit (4300 digits)"),  # was ValueError
    ],
)
def test_yaml_scalars_the_safe_loader_cannot_build_are_errors_with_a_line(
    value: str, shown: str
) -> None:
    with pytest.raises(CardError) as err:
        parse_card(f"{CARD_HEAD}figure: {value}\n---\nbody", CARD_PATH)
    assert str(err.value).startswith("fuzz.md:5: invalid YAML: ") and shown in str(err.value)
    with pytest.raises(ProtocolError, match=r"^fuzz\.yaml:2: invalid YAML: cannot read"):
        compile_protocol(f"name: x\ndescription: {value}\n", PROTOCOL_PATH)


def test_yaml_nested_thousands_deep_is_an_error_not_a_recursion_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(CardError, match=r"^fuzz\.md: invalid YAML: nested too deeply$"):
        parse_card(f"{CARD_HEAD}extensions: {{a: {deep}}}\n---\nbody", CARD_PATH)
    with pytest.raises(ProtocolError, match="nested too deeply"):
        compile_protocol(f"name: x\nstages: {deep}\n", PROTOCOL_PATH)


def test_line_breaks_echoed_from_the_file_are_escaped() -> None:
    # pydantic echoes a bad discriminator, and an unknown key is named as the field.
    text = PROTOCOL_SEEDS["quick.yaml"].replace("kind: statement", 'kind: "state\\rment"', 1)
    with pytest.raises(ProtocolError) as err:
        compile_protocol(text, PROTOCOL_PATH)
    assert "Input tag 'state\\rment'" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(CardError) as err:
        parse_card(f'{CARD_HEAD}"bad\\u2028key": 1\n---\nbody', CARD_PATH)
    assert str(err.value) == "fuzz.md:5: field 'bad\\u2028key': unknown field (not allowed here)"


def test_an_undefined_reference_with_a_line_break_is_escaped() -> None:
    text = PROTOCOL_SEEDS["quick.yaml"].replace("sees: [opening]", 'sees: ["open\\ning"]', 1)
    assert text != PROTOCOL_SEEDS["quick.yaml"]
    with pytest.raises(ProtocolError) as err:
        compile_protocol(text, PROTOCOL_PATH)
    assert "refers to undefined stage 'open\\ning'" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


# Card bodies that once escaped render_template as plain Python errors; now each is a CardError.
TEMPLATE_ESCAPES = {
    "str-format-index": ("{{ '{}'.format() }}", IndexError),
    "topic-format-key": ("{{ topic.format(x=1) }}", KeyError),  # the topic is "a {y} topic"
    "percent-format-key": ("{{ '%(a)s' % {} }}", KeyError),
    "unknown-codec": ("{{ role.encode('no-such-codec') }}", LookupError),
    "truncate-negative": ("{{ role | truncate(-5) }}", AssertionError),
    "recursive-macro": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", RecursionError),
    "deep-parentheses": ("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", RecursionError),
}


@pytest.mark.parametrize(
    ("body", "escapes"), list(TEMPLATE_ESCAPES.values()), ids=list(TEMPLATE_ESCAPES)
)
def test_card_bodies_that_escape_the_template_error_handling(
    body: str, escapes: type[Exception]
) -> None:
    card = parse_card(f"{CARD_HEAD}---\n{body}", CARD_PATH)
    with pytest.raises(CardError) as err:
        system_prompt(card, "a {y} topic")
    assert len(str(err.value).splitlines()) == 1, escapes


@pytest.mark.parametrize(
    "body",
    ["{{ 'a' * 10**10 }}", "{{ role|center(10**10) }}", "{{ role|indent(10**10) }}",
     "{{ lipsum(10**6) }}", "{{ [0] * 10**9 }}", "{{ role|wordwrap(10**10) }}"],
)  # fmt: skip
def test_time_and_memory_bombs_are_refused_quickly(body: str) -> None:
    card = parse_card(f"{CARD_HEAD}---\n{body}", CARD_PATH)
    with pytest.raises(CardError, match="too large|undefined"):
        system_prompt(card, "topic")
