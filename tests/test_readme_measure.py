"""The "Measuring and experimenting from Python" example (docs/measuring.md, once the README's)
runs as written: on the loopback fake provider standing in for the bundled model (fast), and on
the bundled model itself."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from council.meter import embedder_available
from council.testing.fake_provider import Reply

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "measuring.md"
HEADING = "## Measuring and experimenting from Python"


def readme_measure_example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert HEADING in text, "docs/measuring.md has no Python measuring section"
    block = re.search(r"```python\n(.*?)```", text.split(HEADING, 1)[1], re.DOTALL)
    assert block is not None
    return block.group(1)


def reply(body: dict[str, Any]) -> str:
    """Different words for different prompts and seeds; a vote line when one is asked for."""
    digest = hashlib.sha256(json.dumps([body["messages"], body.get("seed")]).encode()).digest()
    words = ["cars", "city", "transit", "kinship", "care", "ritual", "wards", "cost", "trust"]
    text = " ".join(words[b % len(words)] for b in digest[:10])
    return text + ("\nyes | 0.7 | none" if "STANCE" in body["messages"][-1]["content"] else "")


@pytest.fixture
def provider_reply() -> Reply:
    return reply


def run_example(tmp_path: Path, monkeypatch, capsys) -> str:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_measure_example(), str(PAGE), "exec"), {})
    out: str = capsys.readouterr().out
    assert out.startswith("Diversity of run ")
    assert "local/smollm2-135m-instruct" in out  # the seat -> model map
    assert "No-persona baseline" in out and "topic" in out and "framework" in out
    assert (tmp_path / "diversity.html").is_file()
    assert {p.stem for p in (tmp_path / "tables").glob("*.csv")} >= {"seats", "stages", "drift"}
    out_dir = tmp_path / "experiments" / "demo"
    for name in ("summary.json", "report.html", "units.jsonl"):
        assert (out_dir / name).is_file(), name
    assert "t intervals on the G question means" in out and "paired by question" in out
    assert "power to detect a difference of 0.03" in out  # the plan, before any call
    return out


@pytest.mark.skipif(not embedder_available(), reason="the bundled embedding model is missing")
def test_readme_measure_example_runs(
    local_model_on_fake_provider, tmp_path, monkeypatch, capsys
) -> None:
    run_example(tmp_path, monkeypatch, capsys)
    assert local_model_on_fake_provider.request_count > 0


@pytest.mark.local_model
def test_readme_measure_example_runs_on_the_bundled_model(tmp_path, monkeypatch, capsys) -> None:
    run_example(tmp_path, monkeypatch, capsys)
