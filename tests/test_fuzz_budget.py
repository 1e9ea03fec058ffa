"""Fuzzing the render budget: generated Jinja (loops, filters, string operators, format specs,
macros) and YAML (anchors, aliases, tags, nesting) either load and render or end in one line
naming the file, each example within its deadline. The budget is what holds, not a list of
known attacks: a construct nobody listed that blows time or memory fails CI here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from council.base.errors import CardError
from council.personas import parse_card, system_prompt
from council.text.sandbox import MAX_OUTPUT_CHARS
from council.text.templates import RENDER_SECONDS

CARD = Path("fuzz.md")
# A render may use its whole budget and the worker then restarts; nothing may take longer.
DEADLINE = timedelta(seconds=RENDER_SECONDS + 4)

budgeted = settings(
    max_examples=200,
    deadline=DEADLINE,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

numbers = st.sampled_from(["0", "1", "3", "-2", "100", "10000", "1000000", "999999999", "2.5"])
strings = st.sampled_from(["'x'", "'ab'", "'%s'", "'{}'", "'{:>99}'", "'%999999s'", "''", "name"])
variables = st.sampled_from(["name", "role", "traits", "topic", "description"])
atoms = st.one_of(numbers, strings, variables, numbers.map(lambda n: f"range({n})"))


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["~", "+", "*", "%", "**", "//", "-"]), children)
    filters = st.sampled_from(
        [
            "join",
            "upper",
            "list",
            "sort",
            "unique",
            "reverse",
            "string",
            "length",
            "wordcount",
            "center(1000000)",
            "indent(999999)",
            "wordwrap(3)",
            "truncate(5)",
            "batch(3)",
            "replace('x', 'xxxxxxxx')",
            "format('y')",
            "join(', ')",
            "first",
            "sum",
            "int",
        ]
    )
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, filters).map(lambda t: f"(({t[0]})|{t[1]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}.format({t[1]})"),
        st.lists(children, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    )


expressions = st.recursive(atoms, _combine, max_leaves=6)


def _statements(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(expressions, children).map(
            lambda t: f"{{% for x in {t[0]} %}}{t[1]}{{% endfor %}}"
        ),
        st.tuples(expressions, children).map(lambda t: f"{{% set s = {t[0]} %}}{t[1]}{{{{ s }}}}"),
        st.tuples(expressions, children, children).map(
            lambda t: f"{{% if {t[0]} %}}{t[1]}{{% else %}}{t[2]}{{% endif %}}"
        ),
        children.map(
            lambda body: f"{{% macro m(n) %}}{body}{{{{ m(n) }}}}{{% endmacro %}}{{{{ m(1) }}}}"
        ),
        st.lists(children, min_size=2, max_size=3).map("".join),
    )


templates = st.recursive(
    st.one_of(expressions.map(lambda e: f"{{{{ {e} }}}}"), st.just("plain text ")),
    _statements,
    max_leaves=5,
)


def renders_or_fails_in_one_line(text: str) -> None:
    try:
        rendered = system_prompt(parse_card(text, CARD), "Should the city ban cars?")
    except CardError as exc:
        message = str(exc)
        assert message.startswith(str(CARD)) and len(message.splitlines()) == 1, message
        return
    assert len(rendered) <= MAX_OUTPUT_CHARS


@budgeted
@given(templates)
def test_generated_templates_render_or_fail_within_the_budget(body: str) -> None:
    front = "---\nname: fuzz\ndescription: A fuzzer.\nrole: Tester\ntraits: [a, b]\n---\n"
    renders_or_fails_in_one_line(front + body + "\n")


def _yaml_values(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(["k", "l", "m"]), children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
        children.map(lambda v: f"&a {v}"),
        st.sampled_from(["*a", "!!str *a", "[*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]"]),
    )


yaml_values = st.recursive(
    st.sampled_from(["1", "x", "'y'", "!!int 5", "!!binary aGk=", "2024-02-30", "~", "9" * 50]),
    _yaml_values,
    max_leaves=12,
)


@budgeted
@given(st.lists(st.tuples(st.sampled_from(["b", "c", "d", "e", "f"]), yaml_values), max_size=5))
def test_generated_yaml_in_extensions_loads_or_fails_in_one_line(
    entries: list[tuple[str, str]],
) -> None:
    anchors = "".join(f"  {key}: {value}\n" for key, value in entries)
    text = (
        "---\nname: fuzz\ndescription: A fuzzer.\nrole: Tester\nextensions:\n"
        f"  a: &a [x, x, x, x, x, x, x, x, x, x]\n{anchors}---\nHello {{{{ name }}}}.\n"
    )
    renders_or_fails_in_one_line(text)
