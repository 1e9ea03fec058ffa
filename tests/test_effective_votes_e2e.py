"""Effective votes through the engine (issue 31): seats on the fake provider (through litellm)
whose ballots are drawn from a known generative model, convened run after run on one panel.
The first runs are estimated within the run; once the panel's profile holds MIN_PANEL_RUNS
earlier runs, across them, and the interval holds the true n_eff."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.base.errors import ProtocolError
from council.cli.main import main
from council.engine.deliberation import Deliberation
from council.mcp_server.convening import run_summary
from council.meter.independence import MIN_PANEL_RUNS, kish_effective_votes
from council.protocols.library import find_protocol
from council.store.panels import PANELS_DIR
from council.testing import FakeProvider, FunctionModel, well_formed_reply

PANEL = ["popper", "kuhn", "meadows"]
MODELS = {"popper": "openai/alpha", "kuhn": "openai/bravo", "meadows": "openai/charlie"}
CHAIR_MODEL = "openai/zulu"
# popper and kuhn take the question's shared stance nine times in ten, meadows never: corr
# 0.81 for the one pair, 0 for the other two, a mean of 0.27.
COPY = {"alpha": 0.9, "bravo": 0.9, "charlie": 0.0}
TRUTH = kish_effective_votes(3, 0.81 / 3)

PROTOCOL = """\
name: neff-check
description: A statement, a weighted vote, a verdict.
max_tokens: 120
stages:
  - id: opening
    kind: statement
    prompt: "Opening on: {{ question }}"
  - id: vote
    kind: vote
    sees: [opening]
    options: ["yes", "no"]
    rule: independence_weighted
    threshold: 0.6
    prompt: "Ballot on: {{ question }}"
  - id: verdict
    kind: synthesis
    sees: [vote]
    prompt: "Verdict on: {{ question }}"
"""


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def stance(model: str, question: str) -> str:
    """The generative model: the question fixes a shared stance; a seat takes it with its
    copy probability, else draws its own (both fair coins), seeded so every run repeats."""
    shared = random.Random(question).random() < 0.5
    own = random.Random(f"{question}/{model}")
    vote = shared if own.random() < COPY[model] else own.random() < 0.5
    return "yes" if vote else "no"


def reply(body: dict[str, Any]) -> str:
    model = body["model"].rsplit("/", 1)[-1]
    prompt = body["messages"][-1]["content"]
    question = prompt.split(" on: ", 1)[1].split("\n", 1)[0]
    if model == "zulu":
        return "The council voted; see the tally."
    if "Ballot on:" in prompt:
        return f"My reasons as {model}, {question}.\n\n{stance(model, question)} | high | none"
    return f"{model} opens on {question} with words of its own, {model} {model}."


def convene(fake: FakeProvider, runs: Path, question: str) -> Any:
    council = Council(
        PANEL,
        protocol=find_protocol(str(runs.parent / "neff-check.yaml")),
        seats=MODELS,
        model=CHAIR_MODEL,
        endpoints={m: fake.api_base for m in [*MODELS.values(), CHAIR_MODEL]},
        runs_dir=runs,
        similarity="words",
    )
    result = council.convene(question)
    assert result.status == "completed", result.error
    return result


def test_a_panel_run_after_run_recovers_the_true_n_eff(tmp_path: Path) -> None:
    (tmp_path / "neff-check.yaml").write_text(PROTOCOL)
    runs = tmp_path / "runs"
    with FakeProvider(reply) as fake:
        first = convene(fake, runs, "Question 0?")
        for k in range(1, MIN_PANEL_RUNS):
            convene(fake, runs, f"Question {k}?")
        last = convene(fake, runs, f"Question {MIN_PANEL_RUNS}?")
    early, found = first.effective_votes, last.effective_votes
    assert early is not None and early.basis.startswith("this run: 3 seats' replies")
    assert found is not None and found.basis == f"{MIN_PANEL_RUNS} earlier runs of this panel"
    assert found.low <= TRUTH <= found.high and found.n == 3
    # The copying pair gives weight up to the seat that votes on its own.
    assert found.weights["meadows"] > found.weights["popper"]
    [profile] = (runs / PANELS_DIR).glob("*.json")
    assert len(json.loads(profile.read_text())["runs"]) == MIN_PANEL_RUNS + 1
    # Beside the tally wherever it is read: the transcript, MCP, runs show and --json.
    assert "independent votes" in last.transcript()
    # The chair read it with the tally it saw.
    [verdict] = last.turns_in("verdict")
    assert verdict.request is not None
    assert any("Effective votes: 3 seats" in m["content"] for m in verdict.request.messages)
    assert run_summary(last)["tally"]["effective_votes"]["basis"] == found.basis


def test_runs_show_prints_the_effective_votes(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "neff-check.yaml").write_text(PROTOCOL)
    runs = tmp_path / "runs"
    monkeypatch.setenv("COUNCIL_RUNS", str(runs))
    monkeypatch.chdir(tmp_path)
    with FakeProvider(reply) as fake:
        result = convene(fake, runs, "Question 1?")
    assert main(["runs", "show", result.run_id]) == 0
    assert "independent votes" in capsys.readouterr().out
    assert main(["runs", "show", result.run_id, "--json"]) == 0
    [vote] = [t for t in json.loads(capsys.readouterr().out)["tallies"] if t["kind"] == "vote"]
    assert vote["effective_votes"]["n"] == 3


def test_the_rule_needs_an_estimator(tmp_path: Path) -> None:
    (tmp_path / "neff-check.yaml").write_text(PROTOCOL)
    protocol = find_protocol(str(tmp_path / "neff-check.yaml"))
    seats = Council(PANEL, model=FunctionModel(well_formed_reply), runs_dir=None).panel
    with pytest.raises(ProtocolError, match="independence estimator"):
        Deliberation(protocol, seats, seats[0], "Q?", run_id="r")
