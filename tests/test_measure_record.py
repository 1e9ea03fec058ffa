"""A finished run is measured from its own record: the drift reference from the card texts it
recorded and the no-persona baseline's prompt from the protocol text it recorded, whatever has
happened to the library since (a card edited, renamed or deleted, a protocol rewritten)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import council
from council.app.voices import first_prompt, recorded_protocol
from council.engine.prompts import ASSISTANT_SYSTEM_PROMPT
from council.meter.analysis import analyse_run
from council.meter.embedders import FakeEmbedder
from council.personas.library import find_persona
from council.protocols.library import find_protocol
from council.store.loader import load_run
from council.testing import FakeProvider

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should cities ban private cars from their centres?"
MODEL = "openai/fake-model"
OPENING = "Answer in your own voice, from your own method"


def reply(body: dict[str, Any]) -> str:
    """Different words for different prompts and seeds, long enough to be measured."""
    digest = hashlib.sha256(json.dumps([body["messages"], body.get("seed")]).encode()).digest()
    words = ["cars", "streets", "transit", "shops", "air", "noise", "bikes", "rents", "access"]
    return "On this question: " + " ".join(words[b % len(words)] for b in digest[:12]) + "."


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider(reply) as fake:
        # The baseline's calls name no endpoint of their own: litellm's variable sends them here.
        monkeypatch.setenv("OPENAI_API_BASE", fake.api_base)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield fake


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A personas folder and a protocol file of the test's own, first on the search path."""
    folder = tmp_path / "library"
    (folder / "personas").mkdir(parents=True)
    for name in PANEL:
        shutil.copy(find_persona(name).path or "", folder / "personas" / f"{name}.md")
    shutil.copy(find_protocol("council").path, folder / "council.yaml")
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(folder / "personas"))
    return folder


def convene(library: Path, provider: FakeProvider, runs: Path) -> council.RunResult:
    result = council.Council(
        PANEL,
        protocol=str(library / "council.yaml"),
        model=MODEL,
        endpoints={MODEL: provider.api_base},
        runs_dir=runs,
    ).convene(QUESTION)
    assert result.status == "completed", result.error
    assert {s.card_path for s in result.seats if s.role == "panel"} == {
        str(library / "personas" / f"{name}.md") for name in PANEL
    }
    return result


def baseline_prompts(provider: FakeProvider) -> list[str]:
    return [
        body["messages"][-1]["content"]
        for body in provider.requests
        if body["messages"][0]["content"] == ASSISTANT_SYSTEM_PROMPT
    ]


def test_editing_renaming_or_deleting_a_card_leaves_the_measurement_alone(
    library: Path, provider: FakeProvider, tmp_path: Path
) -> None:
    run = convene(library, provider, tmp_path / "runs")
    folder = Path(run.run_dir or "")
    before = council.measure(folder, baseline=8, embedder="fake").to_json()
    assert len(before["drift"]) == 6 and "record_notes" not in before

    cards = library / "personas"
    popper = cards / "popper.md"
    text = popper.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if line.startswith("description:"))
    gardener = "description: A gardener who talks only of roses, soil and rain."
    popper.write_text(text.replace(old, gardener), encoding="utf-8")
    assert council.measure(folder, embedder="fake").to_json() == before  # edited
    (cards / "kuhn.md").rename(cards / "thomas-kuhn.md")
    (cards / "meadows.md").unlink()
    assert council.measure(folder, embedder="fake").to_json() == before  # renamed, deleted

    # The edit would have shown: the same run read without its recorded cards measures the
    # card as the library holds it now, and says so.
    stored = load_run(folder)
    voices = {MODEL: _answers(folder)}
    recorded = analyse_run(stored, FakeEmbedder(), assistant_voice=voices)
    forgotten = analyse_run(
        stored.model_copy(update={"config": None}), FakeEmbedder(), assistant_voice=voices
    )
    assert recorded.to_json()["drift"] == before["drift"]
    changed = {d.seat for d, e in zip(forgotten.drift, recorded.drift, strict=True) if d != e}
    assert changed == {"popper"}
    (note,) = forgotten.record_notes
    assert note.startswith("the run recorded no card text for popper, kuhn, meadows")


def _answers(folder: Path) -> list[str]:
    rows = (folder / "baseline.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(row)["content"] for row in rows]


def test_the_baseline_asks_the_recorded_protocol_not_the_rewritten_file(
    library: Path, provider: FakeProvider, tmp_path: Path
) -> None:
    run = convene(library, provider, tmp_path / "runs")
    protocol = library / "council.yaml"
    asked_then = first_prompt(find_protocol(str(protocol)), QUESTION)
    assert OPENING in asked_then
    protocol.write_text(
        protocol.read_text(encoding="utf-8").replace(OPENING, "Reply with a limerick"),
        encoding="utf-8",
    )
    assert OPENING not in first_prompt(find_protocol(str(protocol)), QUESTION)

    report = council.measure(run, baseline=2, embedder="fake").to_json()
    assert baseline_prompts(provider) == [asked_then] * 2  # one model, two answers
    assert "record_notes" not in report and report["no_persona_baseline"][0]["samples"] == 2
    assert first_prompt(recorded_protocol(run), QUESTION) == asked_then


def test_a_record_without_its_texts_falls_back_to_the_library_and_says_so(
    library: Path, provider: FakeProvider, tmp_path: Path
) -> None:
    run = convene(library, provider, tmp_path / "runs").model_copy(update={"config": None})
    report = council.measure(run, baseline=2, embedder="fake").to_json()
    assert report["record_notes"] == [
        "the run recorded no card text for popper, kuhn, meadows: their drift is measured "
        "against the card as the library holds it now",
        "the run recorded no protocol text: its no-persona baseline answers the first prompt "
        "of protocol 'council' as the library holds it now",
    ]
    text = str(council.measure(run, embedder="fake"))
    assert "Note: the run recorded no card text for popper" in text


def test_a_stored_summary_with_a_malformed_field_is_refused_in_one_line(tmp_path: Path) -> None:
    from council.app.measure import read_summary
    from council.base.errors import ConfigError

    summary = {"experiment": "diversity", "title": "t", "arms": [{"units": 3}]}
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"summary\.json: not an experiment summary: arms\.0\.name"
    ):
        read_summary(tmp_path)
    summary["arms"] = [{"name": "a", "metrics": {"drift": {"mean": 0.2, "ci95": [0.1, 0.3]}}}]
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (arm,) = read_summary(tmp_path).arms  # an older summary, without most sections, still reads
    assert arm.metrics["drift"].ci95 == (0.1, 0.3) and arm.metrics["drift"].n == 0
