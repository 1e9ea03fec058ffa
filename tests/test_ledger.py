"""The run ledger: recording, runs list/show, resume after failure and SIGKILL, replay,
budgets, fallbacks, and no secret in any artifact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from replies import varied

from council import Council
from council.app.resume import replay, resume
from council.base.errors import ConfigError, RunInProgress, UnknownNameError
from council.cli.main import main
from council.engine.budget import Budget
from council.seats import CallSettings, ModelRequest
from council.seats.model import request_hash
from council.testing import FakeProvider

QUESTION = "Should the library open on Sundays?"
FAST = CallSettings(timeout_s=5, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)


def council_on(provider: FakeProvider, runs: Path, **kwargs) -> Council:  # type: ignore[no-untyped-def]
    settings = {
        "protocol": "quick",
        "model": "openai/fake",
        "endpoints": {"openai/fake": provider.api_base, "openai/other": provider.api_base},
        "runs_dir": runs,
        "calls": FAST,
        **kwargs,
    }
    return Council(["popper", "kuhn", "meadows"], **settings)


def sent_hashes(provider: FakeProvider, model: str = "openai/fake") -> Counter[str]:
    return Counter(
        request_hash(
            model,
            ModelRequest(
                stage="",
                messages=body["messages"],
                max_tokens=body["max_tokens"],
                temperature=body["temperature"],
                seed=body.get("seed"),
            ),
        )
        for body in provider.requests
    )


def test_every_call_is_in_the_ledger(provider: FakeProvider, tmp_path: Path) -> None:
    result = council_on(provider, tmp_path).convene(QUESTION)
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    run = db.execute("SELECT status, protocol_hash, seats, config FROM runs").fetchone()
    assert run[0] == "completed" and len(run[1]) == 64
    assert json.loads(run[2])["popper"]["card_hash"] == result.seats[0].card_hash
    calls = db.execute(
        "SELECT seat, model, request_hash, content, latency_s, error FROM calls"
    ).fetchall()
    assert len(calls) == 4 and all(c[2] and c[3] and c[4] >= 0 and c[5] is None for c in calls)
    assert {c[2] for c in calls} == {t.request_hash for t in result.turns}


def test_runs_list_and_show(provider: FakeProvider, tmp_path: Path, capsys) -> None:
    result = council_on(provider, tmp_path).convene(QUESTION)
    assert main(["runs", "list", "--out", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert {"run_id", "question", "status", "started"} <= set(row) and row["calls"] == 4
    assert row["run_id"] == result.run_id and row["status"] == "completed"
    assert main(["runs", "show", result.run_id, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert QUESTION in out and "opening" in out and "verdict" in out
    assert main(["runs", "show", "nope", "--out", str(tmp_path)]) == 2
    assert f"unknown run 'nope'; available: {result.run_id}" in capsys.readouterr().err


def test_replay_with_one_seat_changed_pays_only_for_what_changed(provider, tmp_path) -> None:
    first = council_on(provider, tmp_path).convene(QUESTION)
    calls_before = provider.request_count
    second = replay(first.run_id, tmp_path, seats={"kuhn": "openai/other"})
    assert second.status == "completed" and second.run_id != first.run_id
    reused = {(t.stage, t.seat) for t in second.turns if t.reused}
    assert reused == {("opening", "popper"), ("opening", "meadows")}
    # kuhn on its new model, and the chair who now reads a different kuhn: two new calls.
    assert provider.request_count - calls_before == 2
    assert {t.seat: t.model for t in second.turns}["kuhn"] == "openai/other"


def test_resume_after_a_failed_chair_repeats_no_finished_call(tmp_path: Path) -> None:
    with FakeProvider(varied) as panel, FakeProvider(varied) as chair:
        chair.fail_next(401)
        council = Council(
            ["popper", "kuhn", "meadows"],
            protocol="quick",
            model="openai/fake",
            seats={"chair": "openai/chair"},
            endpoints={"openai/fake": panel.api_base, "openai/chair": chair.api_base},
            runs_dir=tmp_path,
            calls=replace(FAST, chair_fallback=False),  # a failed chair fails
        )
        failed = council.convene(QUESTION)
        assert failed.status == "failed" and panel.request_count == 3
        resumed = resume(failed.run_id, tmp_path)
        assert resumed.status == "completed" and resumed.run_id == failed.run_id
        assert panel.request_count == 3  # every panel answer came from the ledger
        assert [t.reused for t in resumed.turns] == [True, True, True, False]
    with pytest.raises(ConfigError, match="already completed"):
        resume(failed.run_id, tmp_path)
    with pytest.raises(UnknownNameError, match="unknown run 'missing'"):
        resume("missing", tmp_path)
    events = (Path(resumed.run_dir or "") / "events.jsonl").read_text().splitlines()
    assert [json.loads(e)["type"] for e in events].count("run_started") == 2


def test_resume_runs_the_cards_as_recorded_and_replay_reads_them_as_now(
    provider: FakeProvider, tmp_path: Path, write
) -> None:
    card = Path(__file__).parent.parent / "personas" / "high-council" / "popper.md"
    mine = write("cards/popper.md", card.read_text())
    provider.fail_next(401, 401)
    run = Council(
        [mine, "kuhn"],
        protocol="quick",
        model="openai/fake",
        endpoints={"openai/fake": provider.api_base},
        runs_dir=tmp_path,
        calls=FAST,
    ).convene(QUESTION)
    assert run.status == "failed"
    mine.write_text(mine.read_text().replace("combative", "pugnacious"))
    mine.unlink()  # gone altogether: the ledger still holds the card as it ran
    resumed = resume(run.run_id, tmp_path)
    assert resumed.status == "completed"
    assert resumed.seats[0].card_hash == run.seats[0].card_hash


def test_a_card_built_in_code_runs_and_resumes(provider: FakeProvider, tmp_path: Path) -> None:
    from council.personas import CardFields, PersonaCard

    fields = CardFields(name="tinker", description="A bicycle mechanic.", role="Mechanic")
    card = PersonaCard(fields=fields, body="You are {{ name }}, a mechanic. {{ topic }}")
    assert card.path is None and len(card.content_hash) == 64
    provider.fail_next(401, 401)
    run = Council(
        [card, "kuhn"],
        protocol="quick",
        model="openai/fake",
        endpoints={"openai/fake": provider.api_base},
        runs_dir=tmp_path,
        calls=FAST,
    ).convene(QUESTION)
    assert run.status == "failed" and run.seats[0].card_path is None
    resumed = resume(run.run_id, tmp_path)
    assert resumed.status == "completed"
    assert "You are tinker, a mechanic." in resumed.turns[0].request.messages[0]["content"]


def test_sigkill_mid_run_then_resume_issues_no_completed_call_again(tmp_path: Path) -> None:
    with FakeProvider(varied, latency_s=0.4) as provider:
        convene = [
            sys.executable,
            "-m",
            "council",
            "convene",
            QUESTION,
            "--personas",
            "popper,kuhn,meadows",
            "--protocol",
            "council",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={provider.api_base}",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
        child = subprocess.Popen(convene, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ledger = tmp_path / "ledger.sqlite"
        done: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(done) < 4:
            time.sleep(0.02)
            if ledger.exists():
                try:
                    with sqlite3.connect(ledger) as db:
                        done = [r[0] for r in db.execute("SELECT request_hash FROM calls")]
                except sqlite3.OperationalError:
                    continue  # the child is still creating the schema
        with sqlite3.connect(ledger) as db:
            (live_id,) = db.execute("SELECT run_id FROM runs").fetchone()
        with pytest.raises(RunInProgress, match="still running"):
            resume(live_id, tmp_path)  # the child holds the run's lease: no call made twice
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with sqlite3.connect(ledger) as db:
            done = [r[0] for r in db.execute("SELECT request_hash FROM calls")]
            run_id, status = db.execute("SELECT run_id, status FROM runs").fetchone()
        assert status == "running" and 4 <= len(done) < 7  # killed mid-run

        resumed = subprocess.run(
            [
                sys.executable,
                "-m",
                "council",
                "resume",
                run_id,
                "--out",
                str(tmp_path),
                "--json",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stderr
        run = json.loads(resumed.stdout)
        assert run["status"] == "completed" and run["run_id"] == run_id
        sent = sent_hashes(provider)
        for finished in done:
            assert sent[finished] == 1, "a call that had completed was made again"
        assert sum(t["reused"] for t in run["turns"]) == len(done)
        assert len(run["turns"]) == 7


def test_a_token_budget_refuses_a_call_it_could_not_cover(
    provider: FakeProvider, tmp_path: Path
) -> None:
    from council.engine.budget import worst_case_tokens

    unbounded = council_on(provider, tmp_path).convene(QUESTION)
    first = unbounded.turns_in("opening")[0].request
    assert first is not None
    room_for_one = worst_case_tokens(first.messages, first.max_tokens) + 1
    before = provider.request_count
    result = council_on(provider, tmp_path, budget=Budget(max_tokens=room_for_one)).convene(
        QUESTION
    )
    assert result.status == "stopped" and "the next call could take" in (result.error or "")
    assert provider.request_count - before == 1  # popper's call fitted; nobody else's did
    assert [t.seat for t in result.turns] == ["popper"] and result.turns[0].ok  # kept
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM runs ORDER BY started_at")]
    assert sorted(statuses) == ["completed", "stopped"]


def test_a_token_budget_too_small_for_any_call_makes_none(
    provider: FakeProvider, tmp_path: Path
) -> None:
    result = council_on(provider, tmp_path, budget=Budget(max_tokens=1)).convene(QUESTION)
    assert result.status == "stopped" and result.turns == []
    assert provider.request_count == 0


def test_a_wall_time_budget_stops_a_slow_run(tmp_path: Path) -> None:
    with FakeProvider(varied, latency_s=1.0) as slow:
        council = council_on(slow, tmp_path, budget=Budget(max_wall_s=0.5))
        result = council.convene(QUESTION)
    assert result.status == "stopped" and "wall-time budget" in (result.error or "")


def test_a_fallback_answers_when_the_seat_model_fails(tmp_path: Path) -> None:
    with FakeProvider(varied) as broken, FakeProvider("backup answer") as backup:
        broken.fail_next(*[401] * 50)
        council = Council(
            ["popper"],
            protocol="quick",
            model="openai/main",
            fallbacks={"popper": ["openai/backup"]},
            endpoints={"openai/main": broken.api_base, "openai/backup": backup.api_base},
            runs_dir=tmp_path,
            calls=replace(FAST, chair_fallback=False),
        )
        rows = {row.seat: row for row in council.seat_map()}
        assert "falls back to openai/backup" in (rows["popper"].reason or "")
        result = council.convene(QUESTION)
    popper = result.turns[0]
    assert popper.ok and popper.model == "openai/backup" and popper.content == "backup answer"
    assert result.status == "failed"  # the chair's fallback is off and its model is down


def test_no_secret_reaches_any_artifact(tmp_path: Path, monkeypatch, capsys) -> None:
    secret = "sk-planted-secret-9f8e7d6c5b4a"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeProvider(varied) as provider:
        # The provider's own base URL, so litellm sends the real key as a bearer token.
        monkeypatch.setenv("OPENAI_API_BASE", provider.api_base)
        provider.fail_next(401, 500, 500, 429)
        args = [
            "convene",
            QUESTION,
            "--personas",
            "popper,kuhn",
            "--protocol",
            "council",
            "--model",
            "openai/gpt-4o-mini",
            "--out",
            str(tmp_path),
            "--attempts",
            "2",
            "--json",
        ]
        main(args)
        sent = [{k.lower(): v for k, v in h.items()} for h in provider.headers]
        assert any(h.get("authorization") == f"Bearer {secret}" for h in sent)
    out, err = capsys.readouterr()
    assert secret not in out and secret not in err
    artifacts = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite" for p in artifacts) and any(
        p.suffix == ".jsonl" for p in artifacts
    )
    for path in artifacts:
        assert secret.encode() not in path.read_bytes(), path
