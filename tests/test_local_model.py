"""Real councils on the bundled SmolLM2-135M-Instruct, served by llama.cpp, called via litellm.

These check structure, not wording: the same prompt can read differently after a model swap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from council import Council, SamplingSettings
from council.base.errors import ConfigError
from council.seats import ModelRequest, make_model
from council.seats.local import BUNDLED_MODELS, DEFAULT_LOCAL_MODEL, LOCAL_SERVERS, verified_path

pytestmark = pytest.mark.local_model
QUESTION = "Should a small town replace its library with a digital lending service?"


def test_a_real_council_deliberates_on_the_bundled_model(tmp_path: Path) -> None:
    council = Council(
        ["popper", "kuhn", "meadows"],
        protocol="council",
        runs_dir=tmp_path,
        sampling=SamplingSettings(temperature=0.7, seed=11, max_tokens=64),
    )
    assert {row.model for row in council.seat_map()} == {DEFAULT_LOCAL_MODEL}
    result = council.convene(QUESTION)

    assert result.status == "completed", result.error
    # The verdict is checked: one cut off at the 64-token cap is asked for once more.
    stages = [t.stage for t in result.turns]
    assert stages[:7] == ["opening"] * 3 + ["cross_examination"] * 3 + ["verdict"]
    check = result.verdict_check
    assert check is not None and check.status in ("checked", "unchecked")
    assert stages[7:] == (["verdict.reask"] if check.reasked else [])
    for turn in result.turns:
        assert turn.ok and isinstance(turn.content, str) and turn.content.strip()
        assert (turn.provider, turn.model) == ("local", "local/smollm2-135m-instruct")
        assert turn.prompt_tokens and turn.prompt_tokens > 100  # the persona prompt was sent
        assert turn.completion_tokens and 0 < turn.completion_tokens <= 64
        assert turn.cost_usd == 0.0 and turn.latency_s > 0 and turn.error is None
    # Cross-examination prompts carry the blind round, so they are longer.
    opening = {t.seat: t.prompt_tokens for t in result.turns_in("opening")}
    cross = {t.seat: t.prompt_tokens for t in result.turns_in("cross_examination")}
    assert all(cross[s] > opening[s] for s in opening)  # type: ignore[operator]
    assert result.synthesis and result.synthesis == result.turns[-1].content
    transcript = (Path(result.run_dir or "") / "transcript.md").read_text()
    assert result.synthesis in transcript
    assert LOCAL_SERVERS.api_base(DEFAULT_LOCAL_MODEL).startswith("http://127.0.0.1:")


def test_the_cli_convenes_on_the_bundled_model(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "council",
            "convene",
            QUESTION,
            "--personas",
            "hayek,keynes",
            "--protocol",
            "quick",
            "--max-tokens",
            "48",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    run = json.loads(completed.stdout)
    # A verdict cut off at 48 tokens may stay short when asked again: exit 4, and it says so.
    unchecked = (run.get("verdict_check") or {}).get("status") == "unchecked"
    assert completed.returncode == (4 if unchecked else 0), completed.stderr
    assert not unchecked or "verdict unchecked" in completed.stderr
    assert run["status"] == "completed" and run["synthesis"].strip()
    assert [t["seat"] for t in run["turns"]][:3] == ["hayek", "keynes", "chair"]
    assert all(t["content"] and t["error"] is None for t in run["turns"])
    assert "opening · hayek: ok" in completed.stderr  # the progress display, on stderr


class Pieces:
    """A call listener that keeps the streamed pieces and anything else it hears."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.other: list[str] = []

    def delta(self, text: str) -> None:
        self.pieces.append(text)

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self.other.append(f"retrying: {error}")

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        self.other.append(f"falling back: {error}")


async def test_the_bundled_model_streams_its_reply_piece_by_piece() -> None:
    heard = Pieces()
    request = ModelRequest(
        stage="opening",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=32,
        temperature=0.0,
        seed=5,
        listener=heard,
    )
    completion = await make_model(DEFAULT_LOCAL_MODEL).complete(request)
    assert heard.other == [] and len(heard.pieces) > 3
    assert "".join(heard.pieces).strip() == completion.content and completion.content
    # llama.cpp streams one token a piece and reports no usage in a stream: pieces are tokens.
    assert completion.completion_tokens == len(heard.pieces) <= 32
    assert completion.prompt_tokens and completion.cost_usd == 0.0


def test_the_bundled_file_is_verified_before_it_is_served() -> None:
    model = BUNDLED_MODELS["smollm2-135m-instruct"]
    assert verified_path(model).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    tampered = dataclasses.replace(model, sha256="0" * 64)
    with pytest.raises(ConfigError, match="fails its SHA-256 check"):
        verified_path(tampered)


def test_peer_review_ranks_and_tallies_on_the_bundled_model() -> None:
    council = Council(
        ["popper", "kuhn", "meadows"],
        protocol="peer-review",
        runs_dir=None,
        sampling=SamplingSettings(temperature=0.7, seed=5, max_tokens=64),
    )
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    stages = [t.stage for t in result.turns]
    assert stages[:7] == ["answers"] * 3 + ["review"] * 3 + ["final"]
    check = result.verdict_check  # the verdict is checked; a cut-off one asked once more
    assert check is not None and stages[7:] == (["final.reask"] if check.reasked else [])
    (tally,) = result.tallies
    assert tally.kind == "ranking" and len(tally.rankings) == 3
    for ballot in tally.rankings:
        # Whatever the small model wrote, the ballot is a clean subset of the other seats.
        assert ballot.seat not in ballot.order
        assert set(ballot.order) <= {"popper", "kuhn", "meadows"} - {ballot.seat}
    assert set(tally.scores) <= {"popper", "kuhn", "meadows"}
    assert result.synthesis


def test_the_meter_measures_a_real_run_with_an_assistant_baseline(tmp_path: Path, capsys) -> None:
    from council.cli.main import main

    run = Council(
        ["popper", "kuhn"],
        protocol="council",
        runs_dir=tmp_path,
        sampling=SamplingSettings(seed=2, max_tokens=40),
    ).convene(QUESTION)
    assert run.status == "completed", run.error
    assert main(["diversity", str(run.run_dir), "--baseline", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedder"] == "all-MiniLM-L6-v2" and report["dimension"] == 384
    opening = next(s for s in report["stages"] if s["stage"] == "opening")
    assert 0 < opening["mean_pairwise_distance"] < 2 and 1 <= opening["vendi_score"] <= 2
    assert {d["seat"] for d in report["drift"]} == {"popper", "kuhn"} and report[
        "drift_note"
    ] is None
    baseline = (Path(run.run_dir or "") / "baseline.jsonl").read_text().splitlines()
    assert len(baseline) == 2 and all(json.loads(row)["content"] for row in baseline)
    assert (Path(run.run_dir or "") / "report.html").is_file()


class KillsTheServer(Pieces):
    """Kills the bundled model's server at the first piece of the reply: a server that dies
    in the middle of a call."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.process = process

    def delta(self, text: str) -> None:
        if not self.pieces:
            self.process.kill()
        super().delta(text)


async def test_a_bundled_server_that_dies_is_restarted_and_the_call_made_again() -> None:
    from council.records.settings import CallSettings

    settings = CallSettings(max_attempts=2, backoff_initial_s=0.05)
    model = make_model(DEFAULT_LOCAL_MODEL, settings=settings)
    request = ModelRequest(
        stage="opening",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        temperature=0.0,
        seed=5,
    )
    name = BUNDLED_MODELS["smollm2-135m-instruct"].name

    def server() -> subprocess.Popen[bytes]:
        process = LOCAL_SERVERS._servers[name]._process
        assert process is not None
        return process

    assert (await model.complete(request)).content
    first = server()
    first.kill()  # between two calls
    first.wait()
    assert (await model.complete(request)).content
    second = server()
    assert second.pid != first.pid
    # During a call: a reply long enough that the server cannot finish it before it is killed.
    cut_off = KillsTheServer(second)
    long = dataclasses.replace(request, max_tokens=48, listener=cut_off)
    completion = await model.complete(long)
    assert completion.content and server().pid != second.pid
    assert completion.attempts > 1 and cut_off.other[-1].endswith("(server restarted)")
