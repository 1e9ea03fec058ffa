"""The experiment runner and summary on the loopback fake provider: arms, resumability,
intervals, comparisons, noise floor, decomposition, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.app.experiments.runner import Arm, ExperimentPlan, read_questions, run_plan
from council.app.experiments.summary import METRICS, summarise
from council.base.errors import ConfigError
from council.cli.main import main
from council.meter import FakeEmbedder
from council.store.loader import load_run
from council.testing import FakeProvider

PERSONAS = ["popper", "kuhn", "hayek", "keynes"]


def plan_for(provider: FakeProvider, out: Path, **kwargs) -> ExperimentPlan:  # type: ignore[no-untyped-def]
    endpoints = {"openai/llama-small": provider.api_base, "openai/qwen-small": provider.api_base}
    settings = {
        "arms": [
            Arm("single", ["openai/llama-small"], PERSONAS),
            Arm("cross", ["openai/llama-small", "openai/qwen-small"], PERSONAS),
        ],
        "questions": ["Should cities ban cars?", "Should libraries open on Sundays?"],
        "samples": 2,
        "out": out,
        "protocol": "quick",
        "endpoints": endpoints,
        **kwargs,
    }
    return ExperimentPlan(**settings)


def test_units_are_resumable(provider: FakeProvider, tmp_path: Path) -> None:
    plan = plan_for(provider, tmp_path)
    first = run_plan(plan)
    assert first == {
        "ran": 16 + 2 * 2,
        "skipped": 0,
        "failed": 0,
    }  # 8 councils and their 8 placebo twins, no-persona voices of 2 models × 2 questions
    calls = provider.request_count
    assert run_plan(plan) == {"ran": 0, "skipped": 16, "failed": 0}
    assert provider.request_count == calls  # nothing was asked twice
    units = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    arms = ("single", "single~placebo", "cross", "cross~placebo")
    assert {u["unit"] for u in units} == {
        f"{a}/q{q}/s{s}" for a in arms for q in (0, 1) for s in (0, 1)
    }
    # Question by question: an experiment stopped early holds whole questions.
    assert [u["question"] for u in units] == sorted(u["question"] for u in units)


def test_the_cross_arm_splits_polarity_pairs_across_families(provider, tmp_path) -> None:
    run_plan(plan_for(provider, tmp_path))
    cross = next(
        json.loads(line)
        for line in (tmp_path / "units.jsonl").read_text().splitlines()
        if line.startswith('{"unit": "cross')
    )
    run = load_run(cross["run_id"], tmp_path / "runs")
    assert run == load_run(cross["run_dir"])  # the ledger and the folder's export agree
    seats = {s.seat: s.model for s in run.seats}
    assert seats["popper"] != seats["kuhn"] and seats["hayek"] != seats["keynes"]


def test_a_placebo_twin_differs_from_its_arm_only_in_who_sits(provider, tmp_path) -> None:
    """The same persona in every seat, each seat on its arm seat's model, with the arm unit's
    sampling seeds (one per seat place) and labels."""
    run_plan(plan_for(provider, tmp_path, samples=1, questions=["Should cities ban cars?"]))
    rows = {
        row["unit"]: row
        for row in map(json.loads, (tmp_path / "units.jsonl").read_text().splitlines())
    }
    arm = load_run(rows["cross/q0/s0"]["run_id"], tmp_path / "runs")
    twin = load_run(rows["cross~placebo/q0/s0"]["run_id"], tmp_path / "runs")
    panel = [s for s in arm.seats if s.role == "panel"]
    placebo = [s for s in twin.seats if s.role == "panel"]
    assert [s.model for s in placebo] == [s.model for s in panel]
    assert {s.card_hash for s in placebo} == {panel[0].card_hash}  # popper in every seat
    # Each seat place has its own seed (the replies hash it): four different openings in each
    # run, and the twin's first seat, Popper on the same model with the same seed, says what
    # the arm's Popper said.
    opening = {t.seat: t.content for t in arm.turns if t.stage == "opening"}
    first = {t.seat: t.content for t in twin.turns if t.stage == "opening"}
    assert first["popper"] == opening["popper"]  # same card, model, prompt and seed
    assert len(set(opening.values())) == 4 and len(set(first.values())) == 4


def test_a_changed_plan_is_refused(provider, tmp_path) -> None:
    run_plan(plan_for(provider, tmp_path))
    with pytest.raises(ConfigError, match="different experiment"):
        run_plan(plan_for(provider, tmp_path, samples=3))


def test_summary_has_every_metric_with_intervals_on_question_means(provider, tmp_path) -> None:
    run_plan(plan_for(provider, tmp_path))
    summary = summarise(tmp_path, FakeEmbedder()).to_json()
    assert [a["name"] for a in summary["arms"]] == ["single", "cross"]
    measured = set(METRICS) - {"convergence"}  # "quick" has one panel stage: nothing to converge
    for arm in summary["arms"]:
        assert arm["units"] == 4 and "convergence" not in arm["metrics"]
        for name in measured:
            metric = arm["metrics"][name]
            assert (metric["n"], metric["clusters"]) == (4, 2), name
            low, high = metric["ci95"]
            assert low <= metric["mean"] <= high
            assert metric["method"] == "t interval on 2 question means (1 df, scipy.stats.t)"
    assert set(summary["placebo_floor"]) == {"single", "cross"}
    tests = summary["tests"]
    primaries = [(t["metric"], t["a"], t["b"]) for t in tests if t["role"] == "primary"]
    assert primaries == [
        ("above_placebo_floor", "placebo", "single"),
        ("above_placebo_floor", "placebo", "cross"),
        ("above_placebo_floor", "single", "cross"),
    ]
    secondary = [t for t in tests if t["role"] == "secondary"]
    assert {t["metric"] for t in secondary} >= measured - {"above_placebo_floor"}
    assert all(t["adjusted_p"] >= t["p_value"] for t in secondary if t["p_value"] is not None)
    assert {t["test_method"] for t in tests if t["a"] == "single"} == {
        "paired t test on 2 question-level differences, two-sided (scipy.stats.ttest_1samp)"
    }
    assert summary["failed_units"] == [] and summary["underpowered"] is True
    assert [p["metric"] for p in summary["power"]] == ["above_placebo_floor"] * 3
    split = summary["decomposition"]
    assert sum(v for k, v in split.items() if k != "note") == pytest.approx(1.0)
    assert list(split) == ["question", "run", "family", "persona", "residual"]
    assert summary["curves"]["single"][0]["stage"] == "opening"


def test_the_plan_prints_calls_cost_and_power_before_any_call(provider, tmp_path) -> None:
    from council.app.experiments.planning import plan_experiment

    plan = plan_for(provider, tmp_path)
    report = plan_experiment(plan, effect=0.03)
    assert provider.request_count == 0 and not (tmp_path / "plan.json").exists()
    # 16 councils of "quick" (4 seats and the chair: 5 calls), 4 x 8 no-persona answers
    assert (report.councils, report.calls, report.voice_calls) == (16, 16 * 5 + 32, 32)
    assert report.max_completion_tokens == report.calls * 80
    assert report.power is not None and report.power < 0.8
    assert report.questions_for_80 and report.questions_for_80 > 2
    assert [row["questions"] for row in report.table] == [2, 5, 10, 20, 40, 80]
    assert [row["power"] for row in report.table] == sorted(row["power"] for row in report.table)
    text = str(report)
    assert text.startswith("UNDERPOWERED") and "paired t test on question means" in text
    # Models behind an endpoint that litellm has no price for: the cost is unknown, and said so.
    assert report.cost_usd is None and report.unpriced == [
        "openai/llama-small",
        "openai/qwen-small",
    ]
    hosted = ExperimentPlan(
        arms=[Arm("solo", ["openai/gpt-4o-mini"], PERSONAS)],
        questions=["Q?", "R?"],
        samples=1,
        out=tmp_path / "hosted",
        protocol="quick",
    )
    priced = plan_experiment(hosted)
    assert priced.unpriced == [] and priced.cost_usd is not None and priced.cost_usd > 0


def test_questions_file(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("# a comment\n\nFirst?\n  Second?  \n")
    assert read_questions(path) == ["First?", "Second?"]
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no questions"):
        read_questions(path)


def test_experiment_cli(provider: FakeProvider, tmp_path: Path, capsys) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text("Should cities ban cars?\n")
    out = tmp_path / "exp"
    args = [
        "experiment",
        "variants",
        "--pairs",
        "anthropologist,nurse",
        "--model",
        "openai/llama-small",
        "--endpoint",
        f"openai/llama-small={provider.api_base}",
        "--questions",
        str(questions),
        "--samples",
        "2",
        "--out",
        str(out),
        "--protocol",
        "quick",
        "--embedder",
        "fake",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    arms = {a["name"]: a for a in summary["arms"]}
    assert arms["topic"]["personas"] == ["anthropologist-topic", "nurse-topic"]
    assert arms["framework"]["personas"] == ["anthropologist-framework", "nurse-framework"]
    assert (out / "summary.json").is_file() and (out / "report.html").is_file()
    assert main(args) == 0  # a second run re-measures without calling anything
    assert "already done: 8" in capsys.readouterr().err  # 4 councils, 4 placebo twins
    assert main([*args[:-1], "--plan"]) == 0
    assert "power to detect a difference of 0.03" in capsys.readouterr().out


def test_a_failed_unit_is_recorded_and_retried_on_rerun(provider, tmp_path) -> None:
    """A missing extra (here: a bundled model that is not installed) fails its units; they are
    journalled as failed, summarised as such, and run again next time."""
    plan = plan_for(provider, tmp_path, samples=1, questions=["Should cities ban cars?"])
    plan.arms.append(Arm("missing", ["local/not-installed-model"], PERSONAS))
    first = run_plan(plan)
    assert first["failed"] >= 1 and first["ran"] >= 5
    rows = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    missing = [r for r in rows if r["arm"] == "missing"]
    assert [r["status"] for r in missing] == ["failed"] and missing[0]["error"]
    summary = summarise(tmp_path, FakeEmbedder()).to_json()
    assert [u["unit"] for u in summary["failed_units"]] == [
        "missing/q0/s0",
        "missing~placebo/q0/s0",
    ]
    assert next(a for a in summary["arms"] if a["name"] == "missing")["failed_units"] == 1

    again = run_plan(plan)  # retried by default; the completed units are skipped
    assert again["skipped"] == 4 and again["failed"] >= 1
    rows = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    assert sum(r["unit"] == "missing/q0/s0" for r in rows) == 2
    assert run_plan(plan, retry_failed=False)["skipped"] == 6


def test_arms_are_typed_and_checked() -> None:
    arm = Arm("solo", "openai/llama-small", "popper")
    assert arm.models == ["openai/llama-small"] and arm.personas == ["popper"]
    with pytest.raises(ConfigError, match="personas must be one or more names"):
        Arm("empty", ["m/x"], [])
    with pytest.raises(ConfigError, match="without '/'"):
        Arm("a/b", ["m/x"], ["popper"])


def test_experiment_folders_share_one_plan_check_and_journal_reader(tmp_path: Path) -> None:
    from council.app.experiments.folder import check_plan, json_rows

    check_plan(tmp_path, {"samples": 3, "arms": ["a"]})
    check_plan(tmp_path, {"samples": 3, "arms": ["a"]})  # the same plan resumes
    with pytest.raises(ConfigError, match=r"differs in arms, samples"):
        check_plan(tmp_path, {"samples": 2, "arms": ["b"]})
    with pytest.raises(ConfigError, match="nothing has run yet"):
        check_plan(tmp_path / "empty", {"samples": 3}, create=False)
    journal = tmp_path / "units.jsonl"
    journal.write_text('{"unit": "u1"}\n{"unit": "u2"}\n{"unit": "u')  # a write cut short
    assert [row["unit"] for row in json_rows(journal)] == ["u1", "u2"]
    assert journal.read_text() == '{"unit": "u1"}\n{"unit": "u2"}\n'
    journal.write_text('{"unit": "u1"}\nnot json\n')
    with pytest.raises(ConfigError, match=r"units.jsonl:2: not a JSON line"):
        list(json_rows(journal))


def test_an_arm_given_context_runs_beside_its_ungrounded_twin(
    provider: FakeProvider, tmp_path: Path, capsys
) -> None:
    """``--with-context``: each arm also runs as ``NAME+context``, its councils (and their
    placebo twins) given the documents; the arm without them is written as before."""
    questions = tmp_path / "questions.txt"
    questions.write_text("Should cities ban cars?\n")
    design = tmp_path / "design.md"
    design.write_text("# Design\n\nThe bus lanes open in March.\nTraffic falls by a third.\n")
    out = tmp_path / "exp"
    args = [
        "experiment",
        "diversity",
        "--personas",
        "popper,kuhn",
        "--arms",
        "one=openai/llama-small",
        "--with-context",
        str(design),
        "--endpoint",
        f"openai/llama-small={provider.api_base}",
        "--questions",
        str(questions),
        "--samples",
        "1",
        "--out",
        str(out),
        "--protocol",
        "quick",
        "--embedder",
        "fake",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {a["name"] for a in summary["arms"]} >= {"one", "one+context"}
    plan = json.loads((out / "plan.json").read_text())
    by_name = {arm["name"]: arm for arm in plan["arms"]}
    assert "context" not in by_name["one"] and by_name["one+context"]["context"] == [str(design)]
    rows = [json.loads(line) for line in (out / "units.jsonl").read_text().splitlines()]
    grounded = {r["arm"]: r["run_id"] for r in rows if r["status"] == "completed"}
    for arm, shown in [("one", False), ("one+context", True), ("one+context~placebo", True)]:
        run = load_run(grounded[arm], out / "runs")
        assert bool(run.documents) is shown, arm
    sent = [m["content"] for body in provider.requests for m in body["messages"]]
    assert any("The bus lanes open in March." in text for text in sent)
