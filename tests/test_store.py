"""The store: exports equal to the ledger, every prompt recorded, old ledgers migrated, and
every storage fault ending in one line, its own exit status and a consistent ledger.

Disk-full and read-only faults are real: a small tmpfs, filled or remounted read-only (root
can mount one, as in CI; elsewhere those tests are skipped, except read-only, which a
non-root user gets from chmod)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from council import Council
from council.app.resume import resume
from council.base.errors import ConfigError, LedgerFull
from council.cli.main import main
from council.records import CallSettings
from council.seats import ModelRequest
from council.store import wal
from council.store.folder import export_run
from council.store.ledger import Ledger
from council.store.loader import load_run
from council.store.schema import MIGRATIONS, SCHEMA_VERSION
from council.testing import FakeProvider, FunctionModel

QUESTION = "Should the library open on Sundays?"
FAST = CallSettings(timeout_s=5, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)
PANEL = ["popper", "kuhn", "meadows"]


def convene_args(provider: FakeProvider, out: Path, *extra: str) -> list[str]:
    return [
        "convene",
        QUESTION,
        "--personas",
        ",".join(PANEL),
        "--protocol",
        "quick",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
        "--out",
        str(out),
        "--quiet",
        "--attempts",
        "2",
        *extra,
    ]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("council: error: ")
    return err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 6 MiB file system (tmpfs), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of the disk: big writes, then small ones for what is left."""
    for name, size in (("filler", 1 << 16), ("filler-small", 512)):
        try:
            fd = os.open(disk / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        except OSError:
            return
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
        finally:
            os.close(fd)


# -- one record -------------------------------------------------------------------------------


def test_exports_regenerated_from_the_ledger_equal_those_written_live(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.fail_next(401)  # one seat fails for good: seat_absent, a failed turn
    council = Council(
        PANEL,
        protocol="full-council",
        model="openai/fake",
        endpoints={"openai/fake": provider.api_base},
        runs_dir=tmp_path,
        calls=FAST,
    )
    result = council.convene(QUESTION)
    live = Path(result.run_dir or "")
    ledger = Ledger.existing(tmp_path)
    try:
        again = export_run(ledger, result.run_id, tmp_path / "again")
    finally:
        ledger.close()
    assert [p.name for p in again] == ["events.jsonl", "transcript.md"]
    for exported in again:
        assert exported.read_bytes() == (live / exported.name).read_bytes()
    kinds = {json.loads(line)["type"] for line in (live / "events.jsonl").read_text().splitlines()}
    assert {"run_started", "turn_finished", "tally_made", "seat_absent", "run_finished"} <= kinds
    # The same run, read three ways, is the same run.
    assert load_run(result.run_id, tmp_path) == load_run(live) == result


def test_runs_export_command_rewrites_a_deleted_run_folder(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(convene_args(provider, tmp_path, "--json")) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    folder = tmp_path / run_id
    before = (folder / "events.jsonl").read_bytes()
    (folder / "events.jsonl").unlink()
    assert main(["runs", "export", run_id[:20], "--out", str(tmp_path)]) == 0
    assert (folder / "events.jsonl").read_bytes() == before


def test_runs_show_json_has_every_prompt(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(convene_args(provider, tmp_path, "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["runs", "show", "latest", "--out", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == result["run_id"] and len(shown["turns"]) == 4
    sent = [body["messages"] for body in provider.requests]
    for call in shown["turns"]:
        request = call["request"]
        assert request["model"] == "openai/fake" and request["max_tokens"] > 0
        assert request["messages"] in sent  # exactly what the provider received
    chair = next(c for c in shown["turns"] if c["seat"] == "chair")
    for call in shown["turns"]:
        if call["seat"] != "chair":
            assert call["content"] in chair["request"]["messages"][1]["content"]
    assert shown["config"]["panel"][0]["name"] == "popper"


# -- migrations -------------------------------------------------------------------------------


def first_round_ledger(folder: Path) -> str:
    """A ledger as the first round wrote it: schema 0, rows, and an old events.jsonl."""
    repo = Path(__file__).parent.parent
    db = sqlite3.connect(folder / "ledger.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.row_factory = sqlite3.Row
    MIGRATIONS[0](db)  # the first-round DDL, which such a ledger has; user_version stays 0
    run_id, started = "20261120-101010-abcd-old-run", "2026-11-20T10:10:10+00:00"
    seat = {
        "seat": "popper",
        "persona": "popper",
        "role": "panel",
        "provider": "openai",
        "model": "openai/fake",
        "card_path": str(repo / "personas/high-council/popper.md"),
        "card_hash": "0" * 64,
    }
    chair = {
        **seat,
        "seat": "chair",
        "persona": "chair",
        "role": "chair",
        "card_path": str(repo / "personas/chair.md"),
    }
    config = {
        "personas": [seat["card_path"]],
        "chair": chair["card_path"],
        "protocol": str(repo / "protocols/quick.yaml"),
        "seats": {"popper": ["openai/fake"], "chair": ["openai/fake"]},
        "endpoints": {},
        "sampling": {"temperature": 0.7, "seed": None, "max_tokens": None},
        "calls": {
            "timeout_s": 5,
            "max_attempts": 2,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.02,
        },
        "budget": None,
        "label_seed": run_id,
    }
    db.execute(
        "INSERT INTO runs VALUES (?, ?, 'quick', ?, 'failed', 'chair failed', ?, ?, NULL, ?, ?)",
        (
            run_id,
            QUESTION,
            "f" * 64,
            started,
            started,
            json.dumps({"popper": seat, "chair": chair}),
            json.dumps(config),
        ),
    )
    db.execute(
        "INSERT INTO calls (run_id, stage, round, seat, persona, provider, model, request_hash,"
        " response, latency_s, attempts, started_at) VALUES (?, 'opening', 0, 'popper', 'popper',"
        " 'openai', 'openai/fake', 'h1', 'Falsify it first.', 0.1, 1, ?)",
        (run_id, started),
    )
    db.close()
    return run_id


def test_a_first_round_ledger_is_migrated_and_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = first_round_ledger(tmp_path)
    assert main(["runs", "show", run_id, "--out", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["turns"][0]["content"] == "Falsify it first." and shown["status"] == "failed"
    run = load_run(run_id, tmp_path)
    assert run.status == "failed" and run.error == "chair failed"
    assert [t.content for t in run.turns] == ["Falsify it first."]
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_ledger_from_a_newer_council_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Ledger.in_folder(tmp_path).close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    assert main(["runs", "list", "--out", str(tmp_path)]) == 77
    err = one_line_error(capsys)
    assert f"schema version {SCHEMA_VERSION + 1}" in err and "upgrade council" in err


# -- storage faults ---------------------------------------------------------------------------


def test_a_read_only_runs_folder(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: remount a tmpfs read-only
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)], capture_output=True
        )
        if made.returncode != 0:
            pytest.skip("a read-only folder for root needs a mount")
    else:
        folder.chmod(0o555)
    try:
        assert main(convene_args(provider, folder)) == 73
        assert "cannot be written" in one_line_error(capsys) or "read-only" in str(folder)
        assert provider.request_count == 0  # nothing ran that could not be recorded
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_at_start_runs_nothing(
    provider: FakeProvider, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(small_disk)
    assert main(convene_args(provider, small_disk / "runs")) == 74
    assert "is full" in one_line_error(capsys)
    assert provider.request_count == 0


def test_a_disk_filling_mid_run_keeps_every_finished_turn(small_disk: Path) -> None:
    calls: list[str] = []

    def answer(request: ModelRequest) -> str:
        calls.append(request.seat)
        if len(calls) == 2:
            fill(small_disk)  # the disk fills while the second seat is thinking
        return f"{request.seat} has a view."

    council = Council(
        PANEL, protocol="quick", model=FunctionModel(answer), runs_dir=small_disk / "runs"
    )
    with pytest.raises(LedgerFull, match="is full") as raised:
        council.convene(QUESTION)
    assert raised.value.exit_code == 74
    assert calls == ["popper", "kuhn"]  # the run stopped: no call it could not record
    (small_disk / "filler").unlink()
    run = load_run("latest", small_disk / "runs")
    assert run.status == "failed" and "is full" in (run.error or "")
    assert [t.seat for t in run.turns] == ["popper", "kuhn"]  # both finished turns kept
    ledger = Ledger.existing(small_disk / "runs")
    try:
        assert ledger.runs()[0]["status"] == "failed"
    finally:
        ledger.close()


def test_a_ledger_locked_past_the_busy_timeout(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    Ledger.in_folder(tmp_path).close()
    monkeypatch.setenv("COUNCIL_LEDGER_BUSY_TIMEOUT_S", "0.3")
    holder = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    try:
        assert main(convene_args(provider, tmp_path)) == 75
        assert "locked by another process" in one_line_error(capsys)
        assert provider.request_count == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert main(["runs", "list", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # consistent: no half-recorded run


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: p.write_bytes(b"not a database at all" * 100), "is damaged"),
        (lambda p: p.write_bytes(p.read_bytes()[:5000]), "is damaged"),
    ],
    ids=["empty", "garbage", "truncated"],
)
def test_a_damaged_ledger_says_so(
    damage,
    says: str,
    provider: FakeProvider,
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    assert main(convene_args(provider, tmp_path)) == 0
    capsys.readouterr()
    ledger = tmp_path / "ledger.sqlite"
    for sidecar in (tmp_path / "ledger.sqlite-wal", tmp_path / "ledger.sqlite-shm"):
        sidecar.unlink(missing_ok=True)
    damage(ledger)
    assert main(["runs", "list", "--out", str(tmp_path)]) == 76
    assert says in one_line_error(capsys)
    assert main(convene_args(provider, tmp_path)) == 76
    assert says in one_line_error(capsys)


def test_ten_processes_create_a_new_ledger_at_once(tmp_path: Path) -> None:
    code = (
        "import sys; from council.store.ledger import Ledger; Ledger.in_folder(sys.argv[1]).close()"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "runs")], stderr=subprocess.PIPE, text=True
        )
        for _ in range(10)
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 10, errors
    with sqlite3.connect(tmp_path / "runs" / "ledger.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name.endswith(".new")] == []


def test_resume_of_a_run_on_model_objects_says_why(tmp_path: Path) -> None:
    def broken(request: ModelRequest) -> str:
        raise ConnectionError("down")

    failed = Council(
        PANEL, protocol="quick", model=FunctionModel(broken), runs_dir=tmp_path
    ).convene(QUESTION)
    assert failed.status == "failed"
    with pytest.raises(ConfigError, match="ran on a model object"):
        resume(failed.run_id, tmp_path)


def test_a_first_round_run_folder_still_loads() -> None:
    runs = Path(__file__).parent.parent / "docs" / "experiments" / "diversity" / "runs"
    folder = sorted(runs.iterdir())[0]
    run = load_run(folder)  # the committed experiment runs predate the event vocabulary
    assert run.status == "completed" and run.synthesis
    assert run.stages[0] == run.turns[0].stage and len({t.seat for t in run.turns}) >= 3


def test_outcomes_are_recorded_updated_and_listed(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(convene_args(provider, tmp_path, "--json")) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["metadata"]["schema_version"] == 1 and run["metadata"]["mode"] == "quick"
    assert run["metadata"]["panel_size"] == 3 and run["metadata"]["calls"] == 4
    transcript = (Path(run["run_dir"]) / "transcript.md").read_text()
    assert '"schema_version": 1' in transcript
    out = str(tmp_path)
    assert (
        main(
            [
                "outcome",
                "latest",
                "--out",
                out,
                "--prediction",
                "Sunday visits double",
                "--owner",
                "ana",
                "--review-by",
                "2020-01-31",
            ]
        )
        == 0
    )
    assert main(["runs", "list", "--outcomes", "--out", out, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert row["outcome"] == "open (review overdue)" and row["owner"] == "ana"
    assert (
        main(
            [
                "outcome",
                run["run_id"][:20],
                "--out",
                out,
                "--status",
                "confirmed",
                "--note",
                "visits rose 80%",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["runs", "list", "--outcomes", "--out", out, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["outcome"], row["prediction"], row["note"]) == (
        "confirmed",
        "Sunday visits double",
        "visits rose 80%",
    )  # the update kept the rest
    assert main(["outcome", "latest", "--out", out, "--review-by", "soon"]) == 2
    assert "YYYY-MM-DD" in one_line_error(capsys)


def test_a_read_only_archive_is_listed_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading needs no write access: a runs folder on read-only storage (a remounted tmpfs
    for root, chmod otherwise) is listed and shown; writing into it fails in one line."""
    folder = tmp_path / "archive"
    folder.mkdir()
    root = os.geteuid() == 0
    if (
        root
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("a read-only folder for root needs a mount")
    try:
        council = Council(
            PANEL,
            protocol="quick",
            runs_dir=folder,
            model=FunctionModel(lambda r: f"{r.seat} has a view."),
        )
        run = council.convene(QUESTION)
        wal.settle()  # the ledger's keeper holds it open a moment after a run: now closed
        if root:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)
        assert main(["runs", "list", "--out", str(folder)]) == 0
        assert run.run_id in capsys.readouterr().out
        assert main(["runs", "show", "latest", "--out", str(folder), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["run_id"] == run.run_id and shown["question"] == QUESTION
        assert len(shown["turns"]) == len(run.turns)
        assert main(["runs", "export", "latest", "--out", str(folder)]) == 70
        assert "give --to FOLDER" in one_line_error(capsys)
    finally:
        if root:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
