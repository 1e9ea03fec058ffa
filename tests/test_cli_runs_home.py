"""Runs recorded in one home shared by every directory, found again by filters, prefixes and
``latest``; a replay that takes every seat option convene takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.cli.main import main
from council.testing import FakeProvider


def convene(provider: FakeProvider, question: str, *extra: str) -> list[str]:
    return [
        "convene",
        question,
        "--protocol",
        "quick",
        "--quiet",
        "--json",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
        *extra,
    ]


def listed(capsys: pytest.CaptureFixture[str], *filters: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["runs", "list", "--json", *filters]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_runs_from_any_directory_land_in_one_home(
    provider, tmp_path, monkeypatch, capsys, _runs_home
) -> None:
    ids = []
    for folder, question in (("a", "Should cities ban cars?"), ("b", "Should we tax sugar?")):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        assert main(convene(provider, question)) == 0
        run = json.loads(capsys.readouterr().out)
        assert Path(run["run_dir"]).parent == _runs_home
        ids.append(run["run_id"])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert [row["run_id"] for row in listed(capsys)] == ids[::-1]
    assert not (tmp_path / "a" / "runs").exists()


def test_a_project_file_and_a_flag_move_the_runs(provider, tmp_path, monkeypatch, capsys) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "council.toml").write_text('out = "my-runs"\n')
    monkeypatch.chdir(project)
    assert main(convene(provider, "Where do my runs go?")) == 0
    assert Path(json.loads(capsys.readouterr().out)["run_dir"]).parent == project / "my-runs"
    assert [row["question"] for row in listed(capsys)] == ["Where do my runs go?"]
    assert main([*convene(provider, "And with a flag?"), "--out", str(tmp_path / "flag")]) == 0
    assert Path(json.loads(capsys.readouterr().out)["run_dir"]).parent == tmp_path / "flag"
    assert listed(capsys, "--out", str(tmp_path / "flag"))[0]["question"] == "And with a flag?"
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["out"]
    assert shown == {"value": "my-runs", "from": "council.toml"}


def test_runs_list_filters(provider, capsys) -> None:
    assert main(convene(provider, "Should cities ban private cars?")) == 0
    assert main(convene(provider, "Is 100% of 50_000 a lot?", "--personas", "hayek,keynes")) == 0
    assert (
        main(
            [
                *convene(provider, "Ban cars on Sundays?"),
                "--seat",
                "kuhn=openai/other",
                "--endpoint",
                f"openai/other={provider.api_base}",
            ]
        )
        == 0
    )
    capsys.readouterr()

    def questions(*filters: str) -> list[object]:
        return [row["question"] for row in listed(capsys, *filters)]

    assert questions("--question", "BAN") == [
        "Ban cars on Sundays?",
        "Should cities ban private cars?",
    ]
    assert questions("--question", "100%") == ["Is 100% of 50_000 a lot?"]
    assert questions("--question", "0_0") == ["Is 100% of 50_000 a lot?"]
    assert questions("--question", "%") == ["Is 100% of 50_000 a lot?"]  # taken literally
    assert questions("--persona", "hayek") == ["Is 100% of 50_000 a lot?"]
    assert questions("--persona", "hayek' OR '1'='1") == []
    assert questions("--model", "other") == ["Ban cars on Sundays?"]
    assert len(questions("--protocol", "quick", "--status", "completed")) == 3
    assert questions("--protocol", "council") == []
    assert questions("--status", "failed") == []
    assert len(questions("--since", "2000-01-01", "--until", "2999-12-31")) == 3
    assert questions("--until", "2000-01-01") == []
    assert questions("--limit", "1") == ["Ban cars on Sundays?"]
    row = listed(capsys, "--model", "other")[0]
    assert row["seats"] == {
        "popper": "openai/fake",
        "kuhn": "openai/other",
        "meadows": "openai/fake",
        "chair": "openai/fake",
    }


def test_runs_list_refuses_a_bad_date_in_one_line(provider, capsys) -> None:
    assert main(convene(provider, "A question?")) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--since", "last tuesday"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("council: error: --since takes a date as YYYY-MM-DD, not 'last tuesday'")


def test_every_command_takes_a_prefix_or_latest(provider, capsys, tmp_path) -> None:
    assert main(convene(provider, "First?")) == 0
    assert main(convene(provider, "Second?")) == 0
    second = listed(capsys)[0]["run_id"]
    assert isinstance(second, str)
    for name in ("latest", second[:20]):
        assert main(["runs", "show", name, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["run_id"] == second
    assert main(["runs", "export", "latest", "--to", str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "events.jsonl").is_file()


def test_replay_takes_every_seat_option(provider, capsys) -> None:
    assert main(convene(provider, "Replay me?")) == 0
    first = json.loads(capsys.readouterr().out)
    other = ["--endpoint", f"openai/other={provider.api_base}"]
    assert (
        main(
            [
                "replay",
                "latest",
                "--json",
                "--quiet",
                "--model",
                "openai/other",
                *other,
                "--timeout",
                "30",
                "--attempts",
                "2",
            ]
        )
        == 0
    )
    moved = json.loads(capsys.readouterr().out)
    assert moved["run_id"] != first["run_id"]
    assert {t["model"] for t in moved["turns"]} == {"openai/other"}
    assert (
        main(
            [
                "replay",
                first["run_id"][:20],
                "--json",
                "--quiet",
                "--chairman",
                "openai/other",
                *other,
            ]
        )
        == 0
    )
    chaired = json.loads(capsys.readouterr().out)
    models = {t["seat"]: t["model"] for t in chaired["turns"]}
    assert models["chair"] == "openai/other" and models["popper"] == "openai/fake"
    # Only the chair's call was new: the panel's identical calls were reused.
    assert [t["seat"] for t in chaired["turns"] if not t["reused"]] == ["chair"]
