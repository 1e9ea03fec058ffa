"""A no-persona baseline is sampled where the run's seats were: at the endpoints the run
recorded (``council diversity RUN --baseline``, ``council.measure(result, baseline=K)``), with
``--endpoint``/``endpoints=`` overriding one, and keys read from the environment at call time,
never from the record."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import council
from council.base.errors import ConfigError
from council.cli.main import main
from council.engine.prompts import ASSISTANT_SYSTEM_PROMPT
from council.testing import FakeProvider

MODEL = "openai/fake"
ANSWER = "Ban them from the centre, with delivery exceptions and better buses first."


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch) -> None:
    """The failure this guards against: litellm asking for OPENAI_API_KEY for a seat that was
    never sent to OpenAI."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def baseline_calls(fake: FakeProvider) -> int:
    """Requests the fake took under the plain assistant prompt: the baseline's, not a seat's."""
    return sum(
        1 for body in fake.requests if body["messages"][0]["content"] == ASSISTANT_SYSTEM_PROMPT
    )


def convene(fake: FakeProvider, runs: Path, **options: object) -> council.RunResult:
    panel = council.Council(
        ["popper", "kuhn"],
        protocol="quick",
        model=MODEL,
        runs_dir=runs,
        endpoints=options.pop("endpoints", {MODEL: fake.api_base}),
        **options,  # type: ignore[arg-type]
    )
    result = panel.convene("Should cities ban private cars from their centres?")
    assert result.status == "completed"
    return result


def test_measure_samples_the_baseline_at_the_recorded_endpoint(tmp_path: Path) -> None:
    with FakeProvider(ANSWER) as fake:
        result = convene(fake, tmp_path / "runs")
        report = council.measure(result, baseline=2, embedder="fake")
        assert baseline_calls(fake) == 2  # one panel model, asked twice
    [row] = report.to_json()["no_persona_baseline"]
    assert row["model"] == MODEL and row["samples"] == 2
    assert report.to_json()["drift"]  # the baseline was measured against, not only collected
    lines = (Path(result.run_dir or "") / "baseline.jsonl").read_text().splitlines()
    assert [json.loads(line)["content"] for line in lines] == [ANSWER, ANSWER]


def test_the_cli_baseline_and_the_command_the_report_suggests(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("COUNCIL_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)  # no project file: runs go to (and are read from) COUNCIL_RUNS
    with FakeProvider(ANSWER) as fake:
        argv = [
            "convene",
            "Q?",
            "--personas",
            "popper,kuhn",
            "--protocol",
            "quick",
            "--model",
            MODEL,
            "--endpoint",
            f"{MODEL}={fake.api_base}",
            "--json",
            "--quiet",
        ]
        assert main(argv) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        assert main(["diversity", run_id, "--json", "--embedder", "fake"]) == 0
        note = json.loads(capsys.readouterr().out)["drift_note"]
        printed = re.search(r"'(council diversity [^']+)'", note)
        assert printed is not None, note
        # The suggested command, run as printed (with the test's embedder added).
        command = shlex.split(printed.group(1))
        assert command[:3] == ["council", "diversity", run_id]
        assert main([*command[1:], "--embedder", "fake", "--json"]) == 0, capsys.readouterr().err
        assert baseline_calls(fake) == 8  # the default K, at the fake, with no key anywhere
        report = json.loads(capsys.readouterr().out)
    assert report["no_persona_baseline"][0]["samples"] == 8 and report["drift_note"] is None
    page = (tmp_path / "runs" / run_id / "report.html").read_text()
    assert "No no-persona baseline" not in page


def test_a_redacted_endpoint_is_asked_for_again_and_an_override_wins(
    tmp_path: Path, capsys
) -> None:
    with FakeProvider(ANSWER, api_key="sk-url-key") as fake:
        keyed = fake.api_base.replace("http://", "http://me:sk-url-key@")
        result = convene(fake, tmp_path / "runs", endpoints={MODEL: keyed})
        assert "sk-url-key" not in Path(result.run_dir or "", "events.jsonl").read_text()
        with pytest.raises(ConfigError, match=f"--endpoint {MODEL}=URL"):
            council.measure(result, baseline=2, embedder="fake")
        council.measure(result, baseline=2, embedder="fake", endpoints={MODEL: keyed})
        assert baseline_calls(fake) == 2
        # The same from the command line: one line naming the fix, then the override.
        folder = str(result.run_dir)
        assert main(["diversity", folder, "--baseline", "1", "--embedder", "fake"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--endpoint {MODEL}=URL" in err
        argv = [
            "diversity",
            folder,
            "--baseline",
            "1",
            "--embedder",
            "fake",
            "--no-html",
            "--endpoint",
            f"{MODEL}={keyed}",
        ]
        assert main(argv) == 0
        assert baseline_calls(fake) == 3


def test_the_key_variable_the_run_named_is_read_at_call_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_SEAT_KEY", "sk-env-key")
    with FakeProvider(ANSWER, api_key="sk-env-key") as fake:
        result = convene(fake, tmp_path / "runs", api_key_envs={MODEL: "FAKE_SEAT_KEY"})
        council.measure(result, baseline=1, embedder="fake")
        assert baseline_calls(fake) == 1
        monkeypatch.delenv("FAKE_SEAT_KEY")  # the record holds the variable's name only
        with pytest.raises(council.CouncilError, match="FAKE_SEAT_KEY is not set"):
            council.measure(result, baseline=1, embedder="fake")
        assert baseline_calls(fake) == 1
