"""``council diversity RUN_DIR``: councils run on test doubles, then measured from the command
line with the fake embedder (one test uses the bundled all-MiniLM-L6-v2)."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from council import Council
from council.base.errors import CouncilError
from council.cli import diversity_cmd
from council.cli.diversity_cmd import BASELINE_ANSWERS
from council.cli.main import build_parser, main
from council.meter import embedder_available
from council.seats import ModelRequest
from council.testing import FunctionModel

QUESTION = "Should cities ban private cars from their centres?"
REPORT_KEYS = {
    "run_id", "question", "protocol", "embedder", "dimension", "stages", "stance_flips",
    "drift", "drift_note", "failed_turns_skipped", "empty_turns_skipped", "seats",
    "vote_tallies", "no_persona_baseline", "short_turns_skipped", "identifiability",
}  # fmt: skip
STAGE_KEYS = {
    "stage",
    "round",
    "seats",
    "mean_pairwise_distance",
    "vendi_score",
    "note",
    "labels",
    "similarity",
    "points",
}


def _wired() -> bool:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "diversity" in action.choices
    return False


def cli(argv: Sequence[str]) -> int:
    """``council ...`` in process: through ``main`` once the command is wired into it,
    otherwise through a parser holding only this command, with ``main``'s error handling."""
    if _wired():
        return main(list(argv))
    parser = argparse.ArgumentParser(prog="council")
    diversity_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    try:
        code: int = args.handler(args)
    except CouncilError as exc:
        print(f"council: error: {exc}", file=sys.stderr)
        return 2
    return code


def reply(request: ModelRequest) -> str:
    words = {
        "popper": "refutation test falsify conjecture bold",
        "kuhn": "paradigm anomaly community normal science",
        "meadows": "feedback loops stocks flows leverage",
    }
    return f"On cars: {words.get(request.seat, request.seat)} in {request.stage}."


def convene(runs: Path, protocol: str = "council", personas: Sequence[str] = ()) -> Path:
    panel = list(personas) or ["popper", "kuhn", "meadows"]
    council = Council(panel, protocol=protocol, model=FunctionModel(reply), runs_dir=runs)
    result = council.convene(QUESTION)
    assert result.status == "completed"
    return Path(result.run_dir or "")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return convene(tmp_path / "runs")


def test_json_report_cache_and_page(run_dir: Path, capsys) -> None:
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert set(report) == REPORT_KEYS
    assert report["embedder"] == "fake-64" and report["dimension"] == 64
    assert [(s["stage"], s["seats"]) for s in report["stages"]] == [
        ("opening", 3),
        ("cross_examination", 3),
    ]
    for stage in report["stages"]:
        assert set(stage) == STAGE_KEYS
        assert 0 < stage["mean_pairwise_distance"] <= 2 and 1 <= stage["vendi_score"] <= 3
        assert stage["labels"] == ["popper", "kuhn", "meadows"] and len(stage["similarity"]) == 3
    command = f"council diversity {run_dir.name} --baseline"  # the run's own ID, runnable
    assert report["drift"] == [] and command in report["drift_note"]
    cache = run_dir.parent / ".embeddings.sqlite"
    assert cache.is_file()  # beside the runs, shared by every run in the folder
    assert f"embeddings: 0 from the cache, 6 new ({cache})" in err
    page = run_dir / "report.html"
    assert f"report: {page}" in err and page.is_file()
    assert "Cosine similarity: opening" in page.read_text(encoding="utf-8")

    # Again: every text comes from the cache, and the report is the same.
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == report and "embeddings: 6 from the cache, 0 new" in err


def test_cached_embedder_hits_on_second_analysis(run_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "elsewhere" / "cache.sqlite"
    first, embedder = diversity_cmd.analyse_run_dir(run_dir, embedder_name="fake", cache_path=cache)
    assert (embedder.hits, embedder.misses) == (0, 6)
    second, embedder = diversity_cmd.analyse_run_dir(
        run_dir, embedder_name="fake", cache_path=cache
    )
    assert (embedder.hits, embedder.misses) == (6, 0) and second == first
    assert not (run_dir.parent / ".embeddings.sqlite").exists()  # --cache was honoured


def test_a_run_named_by_id_prefix_or_latest_reads_from_the_ledger(run_dir: Path, capsys) -> None:
    runs = str(run_dir.parent)
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake", "--no-html"]) == 0
    from_folder = json.loads(capsys.readouterr().out)
    for name in (run_dir.name, run_dir.name[:22], "latest"):
        argv = ["diversity", name, "--out", runs, "--json", "--embedder", "fake", "--no-html"]
        assert cli(argv) == 0
        assert json.loads(capsys.readouterr().out) == from_folder


def test_table_by_default_and_no_html(run_dir: Path, capsys) -> None:
    assert cli(["diversity", str(run_dir), "--embedder", "fake", "--no-html"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Diversity of run {run_dir.name} (protocol council, embedder fake-64")
    for text in (
        "mean pairwise distance",
        "Vendi score",
        "opening",
        "cross_examination",
        "Drift",
        "Skipped: 0 failed turns, 0 empty turns",
    ):
        assert text in out
    assert re.search(r"kuhn\s+kuhn\s+panel\s+test/function", out)  # the seat -> model map
    assert "Stance flips" not in out and "vote" not in out  # 'council' takes no vote
    assert not (run_dir / "report.html").exists() and "report:" not in err


def test_one_seat_stage_has_a_note_not_a_number(tmp_path: Path, capsys) -> None:
    run_dir = convene(tmp_path / "runs", "mad", ["popper", "kuhn"])
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake"]) == 0
    stages = {(s["stage"], s["round"]): s for s in json.loads(capsys.readouterr().out)["stages"]}
    one = stages[("affirmative", 0)]
    assert one["seats"] == 1 and one["mean_pairwise_distance"] is None
    assert one["vendi_score"] is None and one["note"].startswith("one seat spoke")
    assert stages[("rebuttal", 1)]["mean_pairwise_distance"] is not None
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "affirmative: one seat spoke: diversity needs at least two voices" in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)


def baseline_rows() -> list[dict[str, Any]]:
    return [
        {"model": "test/function", "content": "As an AI assistant, here are pros and cons."},
        {"model": "test/function", "content": "There are several factors to consider here."},
    ]


def test_baseline_file_measures_drift(run_dir: Path, capsys) -> None:
    with (run_dir / "baseline.jsonl").open("w") as out:
        out.writelines(json.dumps(row) + "\n" for row in baseline_rows())
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drift_note"] is None and len(report["drift"]) == 6
    assert {d["seat"] for d in report["drift"]} == {"popper", "kuhn", "meadows"}
    assert "Drift per seat" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_baseline_option_collects_appends_then_measures(run_dir: Path, monkeypatch, capsys) -> None:
    calls: list[int] = []

    def collect_baseline(run: Any, k: int, first_seed: int = 0) -> list[dict[str, Any]]:
        assert run.run_id == run_dir.name
        calls.append(k)
        return baseline_rows()[:k]

    # The run sat on test doubles, which have no model to ask without a persona.
    monkeypatch.setattr("council.app.voices.collect_baseline", collect_baseline)
    assert cli(["diversity", str(run_dir), "--json", "--embedder", "fake", "--baseline", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["drift"]
    assert cli(["diversity", str(run_dir), "--embedder", "fake", "--baseline", "1"]) == 0
    lines = (run_dir / "baseline.jsonl").read_text().splitlines()
    assert calls == [2, 1] and len(lines) == 3  # appended, never overwritten
    # Without K, as many as a baseline needs.
    assert cli(["diversity", str(run_dir), "--embedder", "fake", "--baseline"]) == 0
    assert calls == [2, 1, BASELINE_ANSWERS]


def test_baseline_must_be_positive(run_dir: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        cli(["diversity", str(run_dir), "--baseline", "0"])
    assert "expected a positive whole number" in capsys.readouterr().err


def one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("council: error: ")
    return err


def test_mismatched_embedding_dimension_is_one_line(run_dir: Path, capsys) -> None:
    assert cli(["diversity", str(run_dir), "--embedder", "fake", "--no-html"]) == 0
    capsys.readouterr()
    cache = run_dir.parent / ".embeddings.sqlite"
    with sqlite3.connect(cache) as db:  # as if another embedding model had filled the cache
        vector = np.full(32, 32**-0.5, dtype=np.float32).tobytes()
        db.execute("UPDATE embeddings SET vector = ?", (vector,))
    db.close()
    assert cli(["diversity", str(run_dir), "--embedder", "fake"]) == 2
    err = one_line_error(capsys)
    assert "holds 32-dimensional vectors" in err and str(cache) in err


def test_not_a_run_folder(tmp_path: Path, capsys) -> None:
    assert cli(["diversity", str(tmp_path), "--embedder", "fake"]) == 2
    assert "neither a run folder (no events.jsonl) nor an experiment folder" in one_line_error(
        capsys
    )
    assert not (tmp_path / "report.html").exists()


def test_malformed_baseline_file(run_dir: Path, capsys) -> None:
    (run_dir / "baseline.jsonl").write_text('{"model": "m", "content": "x"}\nnot json\n')
    assert cli(["diversity", str(run_dir), "--embedder", "fake"]) == 2
    assert f"{run_dir / 'baseline.jsonl'}:2: not a JSON line" in one_line_error(capsys)


SUMMARY: dict[str, Any] = {
    "experiment": "variants",
    "title": "Topic-labelled against framework-grounded personas",
    "questions": 2,
    "samples": 2,
    "embedder": "fake-64",
    "arms": [
        {
            "name": "topic",
            "models": ["local/smollm2-135m-instruct"],
            "personas": ["a-topic"],
            "units": 4,
            "metrics": {"blind_mean_pairwise_distance": {"mean": 0.2, "ci95": [0.1, 0.3], "n": 4}},
        },
        {
            "name": "framework",
            "models": ["local/smollm2-135m-instruct"],
            "personas": ["a-framework"],
            "units": 4,
            "metrics": {"blind_mean_pairwise_distance": {"mean": 0.4, "ci95": [0.3, 0.5], "n": 4}},
        },
    ],
    "metric_descriptions": {"blind_mean_pairwise_distance": "Distance in the blind round."},
    "comparisons": [
        {
            "metric": "blind_mean_pairwise_distance",
            "a": "topic",
            "b": "framework",
            "difference": 0.2,
            "ci95": [0.05, 0.35],
            "p_value": float("nan"),
        }
    ],
    "noise_floor": {},
    "decomposition": None,
    "curves": {},
}


def test_experiment_folder_renders_its_summary(tmp_path: Path, capsys) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))  # NaN, as Python writes it
    assert cli(["diversity", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Topic-labelled against framework-grounded personas (variants")
    assert "framework  blind_mean_pairwise_distance  0.400" in out
    assert f"report: {tmp_path / 'report.html'}" in err
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "blind_mean_pairwise_distance by arm" in page and "NaN" not in page

    assert cli(["diversity", str(tmp_path), "--json", "--no-html"]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    summary = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert (
        summary["comparisons"][0]["p_value"] is None and summary["arms"][1]["name"] == "framework"
    )

    assert cli(["diversity", str(tmp_path), "--baseline", "2"]) == 2
    assert "--baseline needs a run folder" in one_line_error(capsys)
    (tmp_path / "summary.json").write_text("{not json")
    assert cli(["diversity", str(tmp_path)]) == 2
    assert "cannot read the experiment summary" in one_line_error(capsys)


@pytest.mark.skipif(not embedder_available(), reason="the bundled embedding model is missing")
def test_bundled_embedder(run_dir: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache.sqlite"
    assert cli(["diversity", str(run_dir), "--json", "--no-html", "--cache", str(cache)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedder"] == "all-MiniLM-L6-v2" and report["dimension"] == 384
    distances = [s["mean_pairwise_distance"] for s in report["stages"]]
    assert all(0 < d < 1 for d in distances)


def test_the_cli_s_baseline_size_is_the_meter_s() -> None:
    """The CLI names it again so that 'council --help' imports none of the records."""
    from council.records.measurable import BASELINE_ANSWERS as meter

    assert BASELINE_ANSWERS == meter == 8
