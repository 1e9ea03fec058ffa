"""The Python API for measuring: ``council.measure`` and ``council.Experiment`` with typed arms,
their report objects (JSON, HTML, text, records, CSV, notebook display), and the CLI's --csv."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

import pytest
from test_experiments import PERSONAS
from test_reports import check_page

import council
from council.base.errors import ConfigError
from council.reports.objects import ExperimentReport, RunReport
from council.seats import ModelRequest
from council.testing import FakeProvider, FunctionModel

QUESTION = "Should cities ban private cars from their centres?"
IDENTIFIABILITY_TABLES = {"identifiability", "identifiability_confusion"}
RUN_TABLES = {"seats", "stages", "points", "similarity", "no_persona_baseline", "drift"}
RUN_TABLES |= IDENTIFIABILITY_TABLES
EXPERIMENT_TABLES = {
    "arms",
    "metrics",
    "comparisons",
    "placebo_floor",
    "power",
    "decomposition",
    "curves",
    "failed_units",
} | IDENTIFIABILITY_TABLES


def reply(request: ModelRequest) -> str:
    words = {
        "popper": "refutation bold conjecture",
        "kuhn": "paradigm anomaly community",
        "meadows": "feedback stocks leverage",
    }
    return f"On cars: {words.get(request.seat, request.seat)} in {request.stage}."


@pytest.fixture
def run(tmp_path: Path) -> council.RunResult:
    panel = council.Council(
        ["popper", "kuhn", "meadows"],
        protocol="council",
        model=FunctionModel(reply),
        runs_dir=tmp_path / "runs",
    )
    return panel.convene(QUESTION)


def test_measure_takes_a_result_a_folder_an_id_or_latest(run, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    report = council.measure(run, embedder="fake")
    assert isinstance(report, RunReport) and report.run_id == run.run_id
    data = report.to_json()
    assert [s["stage"] for s in data["stages"]] == ["opening", "cross_examination"]
    for name in (run.run_dir, Path(run.run_dir or ""), run.run_id[:22], "latest"):
        again = council.measure(name, embedder="fake", runs_dir=runs)
        assert again.to_json() == data, name
    assert (runs / ".embeddings.sqlite").is_file()  # the cache lives beside the run folders
    assert "RunReport(run_id=" in repr(report) and len(report.stages) == 2


def test_a_run_report_shows_itself_every_way(run, tmp_path: Path) -> None:
    report = council.measure(run, embedder="fake")
    check_page(report.to_html())
    assert str(report).startswith(f"Diversity of run {run.run_id}")
    shown = report._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and 'sandbox=""' in shown
    assert html.escape("<!DOCTYPE html>") in shown and "<script" not in shown
    tables = report.tables()
    assert set(tables) == RUN_TABLES  # 'council' takes no vote: no stance-flip table
    assert [row["seat"] for row in tables["seats"]] == ["popper", "kuhn", "meadows", "chair"]
    assert len(tables["similarity"]) == 2 * 9 and len(tables["points"]) == 6
    written = report.write_csv(tmp_path / "csv")
    assert {p.stem for p in written} == RUN_TABLES
    with (tmp_path / "csv" / "seats.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["seat"] == "popper" and rows[0]["model"] == "test/function"
    assert (tmp_path / "csv" / "no_persona_baseline.csv").read_text().strip() == "empty"
    assert report.write_html(tmp_path / "r.html").read_text(encoding="utf-8") == report.to_html()


def test_frames_need_pandas_and_say_so(run) -> None:
    report = council.measure(run, embedder="fake")
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pandas is not installed: use \.tables\(\)"):
            report.frames()
    else:
        frames = report.frames()
        assert list(frames["seats"]["seat"])[:3] == ["popper", "kuhn", "meadows"]


ANSWERS = [
    "Here are the pros and cons of banning cars from centres.",
    "There are several factors to weigh: trade, air and access.",
    "It depends on the city, its transit and its shops.",
    "OK.",  # too short to measure: left out and counted
]


def test_measure_with_a_baseline_adds_drift_and_the_no_persona_baseline(run, monkeypatch) -> None:
    seeds: list[int] = []

    def collect_baseline(found: Any, k: int, first_seed: int = 0) -> list[dict[str, Any]]:
        assert found.run_id == run.run_id
        seeds.append(first_seed)
        return [{"model": "test/function", "content": a, "kind": "assistant"} for a in ANSWERS[:k]]

    monkeypatch.setattr("council.app.voices.collect_baseline", collect_baseline)
    data = council.measure(run, baseline=4, embedder="fake").to_json()
    (baseline,) = data["no_persona_baseline"]
    assert baseline["model"] == "test/function" and len(data["drift"]) == 6
    assert (baseline["samples"], baseline["short_answers_skipped"]) == (3, 1)
    assert baseline["note"] == "fewer than 8 answers: a noisy baseline"
    lines = (Path(run.run_dir or "") / "baseline.jsonl").read_text().splitlines()
    assert len(lines) == 4
    page = council.measure(run, embedder="fake").to_html()  # the baseline file is reused
    assert "no-persona baseline: function" in page and "Drift per seat" in page
    assert "1 under 40 characters left out" in page
    # More answers continue the seeds: the same seeds again would repeat the same answers.
    council.measure(run, baseline=2, embedder="fake")
    assert seeds == [0, 4]


def test_a_run_held_in_memory_is_measured_without_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = council.Council(
        ["popper", "kuhn"], protocol="quick", model=FunctionModel(reply), runs_dir=None
    ).convene(QUESTION)
    report = council.measure(result, embedder="fake")
    assert report.to_json()["stages"][0]["seats"] == 2
    assert list(tmp_path.iterdir()) == []


# --- experiments ----------------------------------------------------------------------------


def experiment(provider: FakeProvider, out: Path, samples: int = 2) -> council.Experiment:
    return council.Experiment(
        arms=[
            council.Arm("single", models="openai/llama-small", personas=PERSONAS),
            council.Arm(
                "cross", models=["openai/llama-small", "openai/qwen-small"], personas=PERSONAS
            ),
        ],
        questions=["Should cities ban cars?", "Should libraries open on Sundays?"],
        samples=samples,
        out=out,
        protocol="quick",
        embedder="fake",
        endpoints={"openai/llama-small": provider.api_base, "openai/qwen-small": provider.api_base},
    )


def test_an_experiment_runs_summarises_and_resumes(provider, tmp_path: Path) -> None:
    exp = experiment(provider, tmp_path / "exp")
    assert "Experiment(diversity: arms single, cross; 2 questions x 2 samples" in repr(exp)
    with pytest.raises(ConfigError, match="nothing has run yet"):
        exp.summary()
    counts = exp.run()
    # 8 councils, their 8 placebo twins, no-persona voices of 2 models x 2 questions
    assert (counts.ran, counts.skipped, counts.failed) == (20, 0, 0)
    summary = exp.summary()
    assert isinstance(summary, ExperimentReport)
    assert [a.name for a in summary.arms] == ["single", "cross"]
    assert summary.to_json()["title"] == "Single model against cross-provider seating"
    assert all((c.test_method or "").startswith("paired t test") for c in summary.comparisons)
    check_page(summary.to_html())
    assert summary._repr_html_().startswith("<iframe srcdoc=")
    assert "single  blind_mean_pairwise_distance" in str(summary)
    assert set(summary.tables()) == EXPERIMENT_TABLES
    written = summary.write_csv(tmp_path / "csv")
    assert {p.stem for p in written} == EXPERIMENT_TABLES
    metrics = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open(newline="")))
    assert {"arm", "metric", "mean", "ci95_low", "ci95_high", "n", "method"} <= set(metrics[0])
    for name in ("summary.json", "report.html", "plan.json", "units.jsonl"):
        assert (tmp_path / "exp" / name).is_file()

    again = experiment(provider, tmp_path / "exp").run()
    assert (again.ran, again.skipped) == (0, 16)
    different = experiment(provider, tmp_path / "exp", samples=1)
    with pytest.raises(ConfigError, match="different experiment"):
        different.summary()


def test_card_variants_and_typed_arms(tmp_path: Path) -> None:
    exp = council.Experiment.card_variants(
        ["anthropologist", "nurse"], "openai/llama-small", questions=["Q?"], out=tmp_path
    )
    assert [(a.name, a.personas) for a in exp.arms] == [
        ("topic", ["anthropologist-topic", "nurse-topic"]),
        ("framework", ["anthropologist-framework", "nurse-framework"]),
    ]
    assert exp.plan.kind == "variants" and exp.title.startswith("Topic-labelled")
    models = council.Experiment.across_models(
        ["popper", "kuhn"], {"one": "m/a", "two": ["m/a", "m/b"]}, questions=["Q?"], out=tmp_path
    )
    assert models.plan.kind == "diversity" and models.arms[0].models == ["m/a"]
    with pytest.raises(ConfigError, match=r"arms must be council\.Arm"):
        council.Experiment(arms=["single=m/a"], questions=["Q?"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="arm names must differ"):
        council.Experiment([council.Arm("a", "m/a", "popper")] * 2, questions=["Q?"])
    questions = tmp_path / "q.txt"
    questions.write_text("# one a line\nFirst?\nSecond?\n")
    from_file = council.Experiment([council.Arm("a", "m/a", "popper")], questions)
    assert from_file.plan.questions == ["First?", "Second?"]


def test_the_cli_writes_every_table_as_csv(run, tmp_path: Path, capsys) -> None:
    from council.cli.main import main

    folder = tmp_path / "tables"
    argv = ["diversity", run.run_dir or "", "--embedder", "fake", "--csv", str(folder), "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert f"tables: {len(RUN_TABLES)} CSV files in {folder}" in err
    assert json.loads(out)["run_id"] == run.run_id
    assert {p.stem for p in folder.glob("*.csv")} == RUN_TABLES
