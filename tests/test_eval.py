"""``council eval``: arms side by side on items with gold answers (issue 31).

Seats on the fake provider answer each item correctly with a known probability, drawn
independently per (model, item, seed) or, for copying seats, shared by every seat; the
harness must recover those accuracies within its intervals, the vote arm the binomial majority
formula, and the seats' error correlation (phi about 0 for independent seats, about 1 for
copies). The paired test's size under the null is checked by simulation at numpy level."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from council.app.eval_data import DatasetError, EvalItem, read_dataset, shipped_dataset
from council.app.evaluation import Eval
from council.cli.main import main
from council.meter.accuracy import accuracy, compare_arms
from council.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
P_CORRECT = {"ind-a": 0.8, "ind-b": 0.6, "ind-c": 0.7, "copy-a": 0.7, "copy-b": 0.7, "copy-c": 0.7}


def synthetic(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n items with four options each, the gold one at a random place."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        options = [f"opt{i}-{k}" for k in range(4)]
        items.append(
            {
                "id": f"q{i:03d}",
                "question": f"Synthetic question {i:03d}?",
                "options": options,
                "answer": rng.choice(options),
                "category": ["alpha", "beta"][i % 2],
            }
        )
    return items


def write_items(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def seeded_reply(items: list[dict[str, Any]]) -> Any:
    """Correct with the model's probability, by a draw keyed by (model, item, seed); copying
    seats share one draw per (item, seed), so they err together. Wrong is always the first
    wrong option: with three seats, plurality is then majority."""
    by_question = {item["question"]: item for item in items}

    def reply(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        item = next((v for q, v in by_question.items() if q in text), None)
        if item is None:  # a protocol stage that is not the vote: any prose
            return "I have considered the options above and will vote at the end."
        model = body["model"].split("/")[-1]
        key = "copy" if model.startswith("copy") else model
        draw = random.Random(f"{key}|{item['id']}|{body.get('seed') if key != 'copy' else 0}")
        wrong = next(o for o in item["options"] if o != item["answer"])
        choice = item["answer"] if draw.random() < P_CORRECT[model] else wrong
        return f"I choose {choice}.\n\n{choice} | high | no"

    return reply


def majority_of_three(p: list[float]) -> float:
    a, b, c = p
    return a * b * c + a * b * (1 - c) + a * (1 - b) * c + (1 - a) * b * c


def within(interval: dict[str, Any], value: float) -> bool:
    low, high = interval["ci95"]
    return bool(low <= value <= high)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One eval of single and vote on 100 synthetic items, seats independent."""
    folder = tmp_path_factory.mktemp("known")
    items = synthetic(100)
    dataset = write_items(folder / "items.jsonl", items)
    models = ["openai/ind-a", "openai/ind-b", "openai/ind-c"]
    with FakeProvider(seeded_reply(items)) as fake:
        evaluation = Eval(
            dataset,
            arms=["single", "vote"],
            models=models,
            out=folder / "out",
            endpoints={m: fake.api_base for m in models},
        )
        counts = evaluation.run()
        calls = fake.request_count
    return {"eval": evaluation, "counts": counts, "calls": calls, "summary": evaluation.summary()}


def test_known_accuracies_are_recovered_within_their_intervals(known: dict[str, Any]) -> None:
    arms = {arm["name"]: arm for arm in known["summary"].to_json()["arms"]}
    single, vote = arms["single"], arms["vote"]
    assert single["accuracy"]["method"].startswith("Wilson")
    assert within(single["accuracy"], P_CORRECT["ind-a"])  # single sits on the first model
    expected = majority_of_three([P_CORRECT["ind-a"], P_CORRECT["ind-b"], P_CORRECT["ind-c"]])
    assert within(vote["accuracy"], expected)
    # One call per item alone, three for the vote; every call answered and counted.
    assert (single["calls"], vote["calls"]) == (100, 300) and known["calls"] == 400
    assert single["prompt_tokens"] > 0 and single["unanswered"] == 0
    assert set(single["categories"]) == {"alpha", "beta"}
    # Independent seats: their errors do not correlate, so three seats are about three votes.
    errors = vote["error_correlation"]
    assert errors["seats"] == 3 and within(errors["mean_phi"], 0.0)
    assert errors["n_eff"]["ci95"][1] == pytest.approx(3.0)
    (pair,) = known["summary"].to_json()["comparisons"]
    assert pair["a"] == "single" and pair["b"] == "vote" and "McNemar" in pair["test_method"]
    assert within(pair["difference"], expected - P_CORRECT["ind-a"])


def test_the_report_holds_the_chart_and_a_rerun_asks_nothing(known: dict[str, Any]) -> None:
    out = known["eval"].out
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "Accuracy per cost" in page and "McNemar" in page
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["kind"] == "eval" and summary["items"] == 100
    with FakeProvider("never asked") as fake:
        again = Eval(
            out.parent / "items.jsonl",
            arms=["single", "vote"],
            models=["openai/ind-a", "openai/ind-b", "openai/ind-c"],
            out=out,
            endpoints={m: fake.api_base for m in ("openai/ind-a", "openai/ind-b", "openai/ind-c")},
        )
        counts = again.run()
        assert fake.request_count == 0
    assert (counts.ran, counts.skipped) == (0, 200)


def test_eval_is_councils_public_api() -> None:
    import council

    assert council.Eval is Eval and "Eval" in council.__all__


def test_copying_seats_err_together_and_carry_one_vote(tmp_path: Path) -> None:
    items = synthetic(40, seed=1)
    dataset = write_items(tmp_path / "items.jsonl", items)
    models = ["openai/copy-a", "openai/copy-b", "openai/copy-c"]
    with FakeProvider(seeded_reply(items)) as fake:
        summary = Eval(
            dataset,
            arms=["vote"],
            models=models,
            out=tmp_path / "out",
            endpoints={m: fake.api_base for m in models},
        ).run_and_summarise()
    (vote,) = summary.to_json()["arms"]
    errors = vote["error_correlation"]
    assert errors["mean_phi"]["mean"] == pytest.approx(1.0)
    assert errors["n_eff"]["mean"] == pytest.approx(1.0)


def test_a_protocol_arm_votes_on_the_items_options(tmp_path: Path) -> None:
    items = synthetic(3, seed=2)
    dataset = write_items(tmp_path / "items.jsonl", items)
    with FakeProvider(seeded_reply(items)) as fake:
        summary = Eval(
            dataset,
            arms=["protocol:high-council-quick"],
            model="openai/ind-a",
            out=tmp_path / "out",
            endpoints={"openai/ind-a": fake.api_base},
        ).run_and_summarise()
        votes = [b for b in fake.requests if "opt0-0" in json.dumps(b)]
    rows = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl").open()]
    assert [r["answer"] in items[i]["options"] for i, r in enumerate(rows)] == [True] * 3
    assert all(r["run_id"] and r["calls"] >= 7 for r in rows)
    assert all(len(r["seat_answers"]) == 3 for r in rows)
    assert votes  # the options reached the seats
    (arm,) = summary.to_json()["arms"]
    assert arm["calls"] == sum(r["calls"] for r in rows)


def test_the_cli_prints_json_and_names_the_report(tmp_path: Path, capsys) -> None:
    items = synthetic(6, seed=3)
    dataset = write_items(tmp_path / "items.jsonl", items)
    with FakeProvider(seeded_reply(items)) as fake:
        argv = ["eval", "--dataset", str(dataset), "--arm", "single", "--arm", "vote"]
        argv += ["--models", "openai/ind-a,openai/ind-b", "--vote-seats", "3", "--json"]
        argv += ["--out", str(tmp_path / "out"), "--samples", "2"]
        argv += ["--endpoint", f"openai/ind-a={fake.api_base}"]
        argv += ["--endpoint", f"openai/ind-b={fake.api_base}"]
        assert main(argv) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert [a["name"] for a in summary["arms"]] == ["single", "vote"]
    assert summary["samples"] == 2
    # Two answers per item: the item is the unit of the interval and of the paired test.
    assert summary["arms"][0]["accuracy"]["method"].startswith("cluster bootstrap over 6 items")
    assert "sign-flip" in summary["comparisons"][0]["test_method"]
    assert "report: " in out.err and (tmp_path / "out" / "report.html").is_file()


GOOD = {"id": "a", "question": "Q?", "options": ["x", "y"], "answer": "x"}


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("{not json", ":2: not JSON"),
        ("[1, 2]", ":2: a line must be a JSON object"),
        (json.dumps({**GOOD, "id": "b", "answer": "z"}), ":2: field 'answer': 'z' is not one"),
        (json.dumps({**GOOD, "id": "b", "options": ["x"]}), ":2: field 'options'"),
        (json.dumps({**GOOD, "id": "b", "options": ["x", "X"]}), ":2: field 'options'"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "question"}), ":2: field 'question'"),
        (json.dumps(GOOD), ":2: field 'id': 'a' repeats line 1"),
        (json.dumps({**GOOD, "id": "b", "extra": 1}), ":2: field 'extra'"),
    ],
)
def test_bad_lines_are_refused_naming_file_line_and_field(
    tmp_path: Path, capsys, line: str, where: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    assert str(caught.value).startswith(f"{path}{where}")
    assert main(["eval", "--dataset", str(path), "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}{where}" in err and "Traceback" not in err


def test_the_shipped_dataset_is_the_scripts_and_well_formed() -> None:
    items = read_dataset(shipped_dataset())
    assert len(items) >= 100
    categories = {item.category for item in items}
    assert (
        len(categories) >= 5 and min(sum(i.category == c for i in items) for c in categories) >= 15
    )
    assert len({item.question for item in items}) == len(items)  # no question twice
    assert all(isinstance(i, EvalItem) and i.answer in i.options for i in items)
    check = [sys.executable, str(ROOT / "examples" / "eval" / "make_basic.py"), "--check"]
    assert subprocess.run(check, check=False).returncode == 0


def test_the_web_apps_experiments_view_shows_the_eval(known: dict[str, Any]) -> None:
    from starlette.testclient import TestClient

    from council.web.app import create_app
    from council.web.settings import ServerSettings

    folder = known["eval"].out
    settings = ServerSettings(runs_dir=folder / "runs", experiments_dir=folder.parent)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        listing = client.get("/experiments")
        assert listing.status_code == 200 and f"/experiments/{folder.name}" in listing.text
        page = client.get(f"/experiments/{folder.name}")
    assert page.status_code == 200
    assert "Accuracy per cost" in page.text and "<svg" in page.text


# -- the statistics, calibrated by simulation (numpy only, no engine) -------------------------


def test_the_paired_test_rejects_near_its_nominal_rate_under_the_null() -> None:
    """Two arms of equal accuracy whose correctness shares each item's difficulty: the exact
    McNemar test (one answer per item) rejects at most about 5% of the time, and not never;
    the sign-flip test on item accuracies (three answers per item) likewise."""
    rng = np.random.default_rng(31)
    trials, n = 300, 60
    rejected = {"mcnemar": 0, "clustered": 0}
    for t in range(trials):
        easy = rng.uniform(0.3, 0.95, size=n)  # each item's chance of a right answer
        a = (rng.random((n, 1)) < easy[:, None]).astype(int)
        b = (rng.random((n, 1)) < easy[:, None]).astype(int)
        one = compare_arms(
            "a", {i: [a[i, 0]] for i in range(n)}, "b", {i: [b[i, 0]] for i in range(n)}
        )
        rejected["mcnemar"] += one.p_value < 0.05
        if t < 100:  # the sign-flip test resamples: fewer trials keep the test cheap
            a3 = (rng.random((n, 3)) < easy[:, None]).astype(int)
            b3 = (rng.random((n, 3)) < easy[:, None]).astype(int)
            three = compare_arms(
                "a", {i: list(a3[i]) for i in range(n)}, "b", {i: list(b3[i]) for i in range(n)}
            )
            rejected["clustered"] += three.p_value < 0.05
    mcnemar, clustered = rejected["mcnemar"] / trials, rejected["clustered"] / 100
    assert 0.005 < mcnemar <= 0.05 + 3 * (0.05 * 0.95 / trials) ** 0.5, mcnemar
    assert clustered <= 0.05 + 3 * (0.05 * 0.95 / 100) ** 0.5, clustered
    print(f"\nnull rejection at 0.05: exact McNemar {mcnemar:.3f}, sign-flip {clustered:.3f}")


def test_the_accuracy_interval_covers_near_its_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    p, n, trials = 0.7, 80, 400
    covered = 0
    for _ in range(trials):
        correct = (rng.random(n) < p).astype(int).tolist()
        interval = accuracy(correct, list(range(n)))
        covered += interval.low <= p <= interval.high  # type: ignore[operator]
    assert abs(covered / trials - 0.95) < 3 * (0.05 * 0.95 / trials) ** 0.5


# -- end to end on the bundled model --------------------------------------------------------


@pytest.mark.local_model
def test_the_shipped_dataset_runs_end_to_end_on_the_bundled_model(tmp_path: Path, capsys) -> None:
    """A slice of the shipped set (its first two categories' first items), every default arm,
    on SmolLM2-135M: structure, not skill (accuracy near chance is the honest result at 135M
    parameters). A long timeout: a loaded machine serves the protocol's long prompts slowly."""
    from council.records.spec import CallSettings

    evaluation = Eval(
        limit=2, out=tmp_path / "out", max_tokens=48, calls=CallSettings(timeout_s=600)
    )
    counts = evaluation.run()
    assert (counts.ran, counts.failed) == (6, 0)
    summary = evaluation.summary().to_json()
    assert [a["name"] for a in summary["arms"]] == [
        "single",
        "vote",
        "protocol:high-council-quick",
    ]
    items = {item.id: item for item in evaluation.items}
    assert sorted(item.category for item in items.values()) == ["arithmetic", "units"]
    for row in evaluation.answers():
        assert row.answer is None or row.answer in items[row.item].options
        assert row.calls >= 1 and row.prompt_tokens > 0 and row.cost_usd == 0.0
    for arm in summary["arms"]:
        assert arm["answers"] == 2 and arm["accuracy"]["ci95"] is not None
    assert len(summary["comparisons"]) == 3
    assert "<svg" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    with capsys.disabled():
        print(f"\n{evaluation.summary()}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arm", "jury"], "unknown arm 'jury': one of single, vote, protocol:NAME"),
        (["--arm", "protocol"], "a protocol arm names its protocol: protocol:NAME"),
        (["--arm", "protocol:nosuch"], "unknown protocol 'nosuch'"),
        (["--arm", "single:x"], "arm 'single' takes no ':x'"),
        (["--arm", "vote", "--vote-seats", "1"], "a vote arm needs at least 2 seats, got 1"),
        (["--arm", "single", "--arm", "single"], "arms repeat: single, single"),
        (["--model", "nomodel"], "model 'nomodel' is not a litellm model string"),
    ],
)
def test_bad_arms_and_models_are_refused_in_one_line(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    assert main(["eval", "--limit", "2", "--out", str(tmp_path / "o"), *argv]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()  # refused before anything was written
