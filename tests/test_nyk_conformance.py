"""docs/nyk-conformance.md lists every rule of nyk's SKILL.md with the test that holds it, or why
council differs. This keeps the table honest: every test it names exists, every row says one of
the three states, and the counts its summary line states are the table's own."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "nyk-conformance.md"
STATES = {"held", "differs", "n/a"}
TEST_NAME = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
SUMMARY = re.compile(r"(\d+) rules: (\d+) held, (\d+) deliberately different, (\d+) not applicable")


def rows() -> list[list[str]]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0].isdigit():
            found.append(cells)
    return found


@cache
def defined_tests(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_row_is_numbered_in_order_and_has_a_state() -> None:
    table = rows()
    assert len(table) >= 80, "the table lists every rule of SKILL.md"
    assert [int(row[0]) for row in table] == list(range(1, len(table) + 1))
    for number, rule, step, state, held_by in table:
        assert rule and step, f"row {number} names its rule and its step"
        assert state in STATES, f"row {number}: state {state!r}"
        assert held_by, f"row {number}: a test, or why council differs"


def test_every_held_rule_names_tests_that_exist() -> None:
    missing = []
    for number, _rule, _step, state, held_by in rows():
        named = TEST_NAME.findall(held_by)
        if state == "held" and not named:
            missing.append(f"row {number}: held, but no test named")
        for path, name in named:
            if not (ROOT / path).exists() or name not in defined_tests(path):
                missing.append(f"row {number}: {path}::{name} does not exist")
    assert missing == []


def test_the_summary_counts_are_the_tables() -> None:
    table = rows()
    stated = SUMMARY.search(TABLE.read_text(encoding="utf-8"))
    assert stated, "the page states its counts"
    states = [row[3] for row in table]
    counted = (len(table), states.count("held"), states.count("differs"), states.count("n/a"))
    assert tuple(int(group) for group in stated.groups()) == counted
