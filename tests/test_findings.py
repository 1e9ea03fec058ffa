"""The findings page and the measuring page's findings summary are rendered from the shipped
experiments' summary.json files (docs/experiments/regenerate.py): these tests hold the
Markdown to the JSON, and keep figures out of the templates."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "experiments" / "regenerate.py"
# A figure typed into a template: a decimal number or a percentage. Model names such as
# "Qwen2.5" or "0.5B" are part of a word and not matched.
FIGURE = re.compile(r"(?<![\w.])[-+−]?\d+\.\d+(?![\w.])|(?<![\w.])\d+(\.\d+)?%")


def _regenerate():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("regenerate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_findings_page_is_what_the_summaries_render() -> None:
    regenerate = _regenerate()
    page, block = regenerate.rendered()
    assert regenerate.FINDINGS.read_text(encoding="utf-8") == page, (
        "docs/findings.md differs from its summaries: run docs/experiments/regenerate.py"
    )
    assert block in regenerate.SUMMARY_PAGE.read_text(encoding="utf-8"), (
        "docs/measuring.md's findings summary differs from its summaries: run regenerate.py"
    )


def test_the_templates_hold_no_figure_typed_by_hand() -> None:
    regenerate = _regenerate()
    for template in (regenerate.TEMPLATE, regenerate.SUMMARY_TEMPLATE):
        text = template.read_text(encoding="utf-8")
        prose = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", text, flags=re.S)
        typed = [match.group(0) for match in FIGURE.finditer(prose)]
        assert not typed, (template.name, typed)
    assert FIGURE.search(regenerate.FINDINGS.read_text(encoding="utf-8")), "no figure rendered"
