"""Follow-ups (issue 30): a finished council asked a new question by the same seats, each shown
a bounded digest of the parent's verdict and its own earlier position; linked to its parent in
the ledger, in ``runs show`` and ``runs list``; chains; resume after SIGKILL; errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from council import Council
from council.app.follow_up import DIGEST_CHARS, POSITION_SHARE, digest, follow_up
from council.base.errors import ConfigError, RunInProgress, UnknownNameError
from council.cli.main import main
from council.records.settings import CallSettings
from council.store.ledger import Ledger
from council.testing import FakeProvider

QUESTION = "Should the library open on Sundays?"
NEXT = "Then who should staff it on Sunday mornings?"
FAST = CallSettings(timeout_s=5, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)
PANEL = ["popper", "kuhn", "meadows"]


def convene(provider: FakeProvider, runs: Path, question: str = QUESTION, **kwargs):  # type: ignore[no-untyped-def]
    council = Council(
        PANEL,
        protocol="quick",
        model="openai/fake",
        endpoints={"openai/fake": provider.api_base},
        runs_dir=runs,
        calls=FAST,
        **kwargs,
    )
    return council.convene(question)


def user_prompt(turn) -> str:  # type: ignore[no-untyped-def]
    assert turn.request is not None
    return str(turn.request.messages[-1]["content"])


def test_each_seat_sees_the_verdict_and_its_own_position_only(
    provider: FakeProvider, tmp_path: Path
) -> None:
    parent = convene(provider, tmp_path)
    assert parent.status == "completed"
    child = parent.follow_up(NEXT)
    assert child.status == "completed", child.error
    assert child.question == NEXT and child.parent_run == parent.run_id
    assert child.thread == [parent.run_id]
    # The same seats on the same models, with the same cards, on the new question.
    assert [(s.seat, s.model, s.card_hash) for s in child.seats] == [
        (s.seat, s.model, s.card_hash) for s in parent.seats
    ]
    said = {t.seat: t.text for t in parent.turns_in("opening")}
    assert parent.synthesis is not None
    for turn in child.turns_in("opening"):
        prompt = user_prompt(turn)
        assert parent.synthesis.strip()[:60] in prompt  # the verdict
        assert said[turn.seat] in prompt  # its own earlier position
        for other, text in said.items():
            if other != turn.seat:
                assert text not in prompt, f"{turn.seat} was shown {other}'s position"
        assert NEXT in prompt
    # The chair's own position is the verdict: shown once, as the verdict.
    chair = child.turns_in("verdict")[0]
    assert user_prompt(chair).count(parent.synthesis.strip()[:60]) == 1
    assert "Your own last position" not in child.earlier["chair"]


def test_the_digest_is_bounded(provider: FakeProvider, tmp_path: Path) -> None:
    parent = convene(provider, tmp_path, question="Sundays? " + "why " * 5000)
    long_position = "word " * 10_000
    turns = [
        t.model_copy(update={"content": long_position}) if t.seat == "kuhn" else t
        for t in parent.turns
    ]
    parent = parent.model_copy(update={"turns": turns, "synthesis": "verdict " * 10_000})
    shown = digest(parent, "kuhn")
    assert len(shown) <= DIGEST_CHARS and shown.count("[...cut]") == 3
    position = shown.split("Your own last position then (opening)\n\n")[1]
    assert len(position) <= POSITION_SHARE and position.endswith("[...cut]")
    assert len(position) > POSITION_SHARE - 20  # cut to its share, not by the total


def test_the_link_is_in_the_ledger_json_show_and_list(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = convene(provider, tmp_path)
    child = parent.follow_up(NEXT)
    ledger = Ledger.existing(tmp_path)
    try:
        assert ledger.run(child.run_id)["parent_run"] == parent.run_id  # type: ignore[index]
        assert ledger.run(parent.run_id)["parent_run"] is None  # type: ignore[index]
        assert ledger.follow_ups(parent.run_id) == [child.run_id]
    finally:
        ledger.close()
    out = ["--out", str(tmp_path)]
    assert main(["runs", "show", child.run_id, "--json", *out]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["parent_run"] == parent.run_id and shown["thread"] == [parent.run_id]
    assert shown["follow_ups"] == []
    assert main(["runs", "show", parent.run_id, "--json", *out]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "parent_run" not in shown and shown["follow_ups"] == [child.run_id]
    assert main(["runs", "show", parent.run_id, *out]) == 0
    assert f"follow-ups: {child.run_id}" in capsys.readouterr().out
    assert main(["runs", "show", child.run_id, *out]) == 0
    assert f"follows: {parent.run_id}" in capsys.readouterr().out
    assert main(["runs", "list", "--json", *out]) == 0
    listed = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[child.run_id]["follows"] == parent.run_id
    assert listed[parent.run_id]["follows"] is None
    assert main(["runs", "list", *out]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if child.run_id in line)
    assert f"[follow-up of {parent.run_id}] {NEXT}" in line


def test_a_chain_of_two_follow_ups_digests_its_parent_and_threads_every_ancestor(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = convene(provider, tmp_path)
    first = root.follow_up(NEXT)
    assert main(["follow-up", first.run_id, "And on holidays?", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    second_id = Ledger.existing(tmp_path).follow_ups(first.run_id)[0]
    assert main(["runs", "show", second_id, "--json", "--out", str(tmp_path)]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["status"] == "completed" and second["question"] == "And on holidays?"
    assert second["parent_run"] == first.run_id
    assert second["thread"] == [root.run_id, first.run_id]
    # The digest is of the immediate parent: its question and verdict, not the root's.
    prompt = second["turns"][0]["request"]["messages"][-1]["content"]
    assert NEXT in prompt and f"run {first.run_id}" in prompt
    assert QUESTION not in prompt


def test_follow_up_errors_are_one_line(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = convene(provider, tmp_path)
    with pytest.raises(ConfigError, match="question is empty"):
        parent.follow_up("  ")
    with pytest.raises(UnknownNameError):
        follow_up("no-such-run", NEXT, tmp_path)
    provider.fail_next(401, 401, 401, 401)  # every panel seat fails for good: the run fails
    failed = convene(provider, tmp_path)
    assert failed.status == "failed"
    with pytest.raises(
        ConfigError, match=r"did not finish \(it ended failed\).*--allow-unfinished"
    ):
        failed.follow_up(NEXT)
    anyway = failed.follow_up(NEXT, allow_unfinished=True)
    assert anyway.status == "completed" and anyway.parent_run == failed.run_id
    assert "(none: the council did not finish; it failed)" in anyway.earlier["popper"]
    out = ["--out", str(tmp_path)]
    cases = [
        (["follow-up", "no-such-run", NEXT], "unknown run 'no-such-run'"),
        (["follow-up", parent.run_id, " "], "the question is empty"),
        (["follow-up", failed.run_id, NEXT], "did not finish"),
    ]
    for argv, message in cases:
        assert main([*argv, *out]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    too_long = tmp_path / "long.txt"
    too_long.write_bytes(b"x" * ((1 << 20) + 1))
    assert main(["follow-up", parent.run_id, "--question-file", str(too_long), *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "over 1 MiB" in err[0]
    unrecorded = Council(
        PANEL,
        protocol="quick",
        model="openai/fake",
        endpoints={"openai/fake": provider.api_base},
        runs_dir=None,
        calls=FAST,
    ).convene(QUESTION)
    with pytest.raises(ConfigError, match="was not recorded"):
        unrecorded.follow_up(NEXT)


def test_a_running_parent_is_refused(provider: FakeProvider, tmp_path: Path) -> None:
    from council.store.lease import RunLease

    parent = convene(provider, tmp_path)
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        db.execute("UPDATE runs SET status='running' WHERE run_id=?", (parent.run_id,))
    lease = RunLease(tmp_path, parent.run_id)
    lease.acquire()
    try:
        with pytest.raises(RunInProgress, match="still running"):
            parent.follow_up(NEXT, allow_unfinished=True)
    finally:
        lease.release()


def test_sigkill_mid_follow_up_then_resume_reuses_every_finished_turn(tmp_path: Path) -> None:
    from replies import varied
    from test_ledger import sent_hashes

    with FakeProvider(varied, latency_s=0.4) as provider:
        parent = Council(
            PANEL,
            protocol="council",
            model="openai/fake",
            endpoints={"openai/fake": provider.api_base},
            runs_dir=tmp_path,
            calls=FAST,
        ).convene(QUESTION)
        assert parent.status == "completed"
        before = provider.request_count
        command = [sys.executable, "-m", "council", "follow-up", parent.run_id, NEXT]
        child = subprocess.Popen(
            [*command, "--out", str(tmp_path), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        done: list[str] = []
        run_id = None
        deadline = time.monotonic() + 300  # a loaded machine starts the child slowly
        while time.monotonic() < deadline and len(done) < 4:
            time.sleep(0.02)
            with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
                row = db.execute(
                    "SELECT run_id FROM runs WHERE parent_run=?", (parent.run_id,)
                ).fetchone()
                if row is not None:
                    run_id = row[0]
                    done = [
                        r[0]
                        for r in db.execute(
                            "SELECT request_hash FROM calls WHERE run_id=?", (run_id,)
                        )
                    ]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        killed_at = provider.request_count  # calls in flight then were lost: made again
        assert run_id is not None
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            done = [
                r[0] for r in db.execute("SELECT request_hash FROM calls WHERE run_id=?", (run_id,))
            ]
            (status,) = db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        assert status == "running" and 4 <= len(done) < 7  # killed mid-run
        resumed = subprocess.run(
            [*command[:3], "resume", run_id, "--out", str(tmp_path), "--json", "--quiet"],
            capture_output=True,
            text=True,
            timeout=600,  # a loaded machine imports slowly; a hang still ends
        )
        assert resumed.returncode == 0, resumed.stderr
        run = json.loads(resumed.stdout)
        assert run["status"] == "completed" and run["run_id"] == run_id
        assert run["parent_run"] == parent.run_id and run["thread"] == [parent.run_id]
        sent = sent_hashes(provider)
        for finished in done:
            assert sent[finished] == 1, "a call that had completed was made again"
        assert sum(t["reused"] for t in run["turns"]) == len(done)
        assert len(run["turns"]) == 7 and killed_at - before >= len(done)
        assert provider.request_count - killed_at == 7 - len(done)  # only the unfinished
        # Every resumed prompt still carries its seat's digest of the parent.
        for turn in run["turns"]:
            if turn["seat"] != "chair":
                assert "Earlier in this thread" in turn["request"]["messages"][-1]["content"]


def test_the_mcp_follow_up_tool(provider: FakeProvider, tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK (pip install 'mcp==2.3.0')")
    import asyncio

    from mcp import Client

    from council.mcp_server.requests import ServerSettings
    from council.mcp_server.server import build_server

    server = build_server(ServerSettings(runs_dir=tmp_path, allow_endpoints=True))

    async def scenario() -> None:
        notes: list[str] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            notes.append(message or "")

        async with Client(server) as client:
            endpoints = {"openai/fake": provider.api_base}
            given = {"personas": PANEL, "protocol": "quick", "endpoints": endpoints}
            convened = await client.call_tool(
                "convene", {"question": QUESTION, "model": "openai/fake", **given}
            )
            assert not convened.is_error, convened.content
            parent = convened.structured_content
            assert parent is not None and parent["parent_run"] is None
            result = await client.call_tool(
                "follow_up", {"run": "latest", "question": NEXT}, progress_callback=progress
            )
            assert not result.is_error, result.content
            child = result.structured_content
            assert child is not None and child["status"] == "completed"
            assert child["question"] == NEXT and child["parent_run"] == parent["run_id"]
            assert child["thread"] == [parent["run_id"]] and notes[-1] == "run completed"
            for arguments, message in [
                ({"run": "../x", "question": NEXT}, "is not a name"),
                ({"run": "latest", "question": " "}, "question: empty"),
                ({"run": "latest", "question": "x" * 20_001}, "at most 20000"),
                ({"run": "nope", "question": NEXT}, "unknown run 'nope'"),
            ]:
                refused = await client.call_tool("follow_up", arguments)
                text = refused.content[0].text  # type: ignore[union-attr]
                assert refused.is_error and message in text and "\n" not in text, text

    async def without_endpoints() -> None:  # the same ledger, a server that allows no URL
        async with Client(build_server(ServerSettings(runs_dir=tmp_path))) as client:
            refused = await client.call_tool("follow_up", {"run": "latest", "question": NEXT})
            text = refused.content[0].text  # type: ignore[union-attr]
            assert refused.is_error and "does not let a request point seats at URLs" in text

    asyncio.run(scenario())
    asyncio.run(without_endpoints())


def test_the_readme_follow_up_examples_run(
    local_model_on_fake_provider: FakeProvider, _runs_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_readme import README, python_block, run_python, section, shell_commands

    scope: dict[str, object] = {}
    run_python(README, python_block(README, ".follow_up("), scope)
    assert capsys.readouterr().out.startswith("True ")
    then = scope["then"]
    assert then.status == "completed" and then.thread == [scope["result"].run_id]  # type: ignore[attr-defined]
    commands = shell_commands(section(README, "## Follow-up questions"))
    assert [command[:2] for command in commands] == [["council", "follow-up"], ["council", "runs"]]
    for command in commands:
        assert main(command[1:]) == 0
    out = capsys.readouterr().out
    assert f"follows: {then.run_id}" in out  # type: ignore[attr-defined]


def test_a_follow_up_replays_from_the_ledger_as_a_follow_up_of_the_same_parent(
    provider: FakeProvider, tmp_path: Path
) -> None:
    from council.app.resume import replay

    parent = convene(provider, tmp_path)
    child = parent.follow_up(NEXT)
    before = provider.request_count
    again = replay(child.run_id, tmp_path)
    assert again.status == "completed" and again.run_id != child.run_id
    assert again.parent_run == parent.run_id and again.thread == child.thread
    assert again.earlier == child.earlier
    assert provider.request_count == before  # every call answered from the record
    assert all(turn.reused for turn in again.turns)
