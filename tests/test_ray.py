"""Experiments on a local Ray cluster: the same records and summary as in process, resumable
after an interrupted driver, and one rate limit held across every worker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'persona-council[ray]')")

from replies import varied  # noqa: E402
from test_experiments import plan_for  # noqa: E402

from council.app.experiments.runner import run_plan  # noqa: E402
from council.app.experiments.summary import summarise  # noqa: E402
from council.cli.main import main  # noqa: E402
from council.meter import FakeEmbedder  # noqa: E402
from council.seats.gate import ProviderLimit  # noqa: E402
from council.store.loader import load_run  # noqa: E402
from council.testing import FakeProvider  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One small local cluster for the module (the machine is shared)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


class TimedReplies:
    """The fake provider's reply function, noting when each request was answered."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            self.times.append(time.monotonic())
        return varied(body)


def records(out: Path) -> dict[str, Any]:
    """Each unit's row (less its run's id and folder) with its run's turns, by unit."""
    rows = [json.loads(line) for line in (out / "units.jsonl").read_text().splitlines()]
    found = {}
    for row in rows:
        run = load_run(row["run_id"], out / "runs")
        assert run.run_dir == row["run_dir"] and Path(row["run_dir"], "transcript.md").is_file()
        turns = [(t.stage, t.seat, t.model, t.content, t.ok) for t in run.turns]
        found[row["unit"]] = ({k: row[k] for k in ("arm", "question", "sample", "status")}, turns)
    path = out / "voices.jsonl"
    voices = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {"units": found, "voices": sorted(voices, key=lambda v: v["unit"])}


def test_ray_gives_the_same_records_and_summary(provider: FakeProvider, tmp_path: Path) -> None:
    here, there = tmp_path / "in-process", tmp_path / "ray"
    # 8 councils, their 8 placebo twins, no-persona voices of 2 models x 2 questions
    assert run_plan(plan_for(provider, here)) == {"ran": 20, "skipped": 0, "failed": 0}
    assert run_plan(plan_for(provider, there), executor="ray") == {
        "ran": 20,
        "skipped": 0,
        "failed": 0,
    }
    assert records(there) == records(here)
    assert len(records(there)["units"]) == 16
    summary = summarise(there, FakeEmbedder())
    assert summary == summarise(here, FakeEmbedder())
    assert [arm.units for arm in summary.arms] == [4, 4]


@pytest.mark.parametrize("executor", ["ray", "in-process"])
def test_an_interrupted_run_resumes_without_repeating_finished_units(
    provider: FakeProvider, tmp_path: Path, executor: str
) -> None:
    """Interrupted on a cluster or in process, resumed on the cluster (either way round is the
    same record: the ledger and journals know nothing of where a unit ran)."""
    clean = tmp_path / "clean"
    run_plan(plan_for(provider, clean), executor="ray")
    clean_requests = provider.request_count

    def interrupt_at_third(line: str) -> None:
        if line.startswith("3/"):
            raise KeyboardInterrupt  # the driver stops (Ctrl-C) with units still out on workers

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan_for(provider, out), interrupt_at_third, executor=executor)
    finished = records(out)
    assert len(finished["units"]) == 3
    before = provider.request_count
    # What is left: 16 councils less the 3 finished, and any voice still out when the driver
    # stopped (the voices are sent first, but a cluster hands back what finishes first: on a
    # loaded machine a council can come back before the last voice).
    voices_left = len(records(clean)["voices"]) - len(finished["voices"])
    assert run_plan(plan_for(provider, out), executor="ray") == {
        "ran": 13 + voices_left,
        "skipped": 3,
        "failed": 0,
    }
    # The rerun asked exactly what the finished units had not: one request a turn or answer.
    kept = sum(len(turns) for _, turns in finished["units"].values())
    kept += sum(len(v["answers"]) for v in finished["voices"])
    assert provider.request_count - before == clean_requests - kept
    assert records(out) == records(clean)


def test_the_rate_limit_holds_across_workers(tmp_path: Path) -> None:
    per_second = 8
    replies = TimedReplies()
    with FakeProvider(replies) as fake:
        limits = {"openai": ProviderLimit(rpm=60 * per_second)}
        plan = plan_for(fake, tmp_path, baseline_samples=1, placebo=False)
        run_plan(plan, executor="ray", rate_limits=limits)
    times = sorted(replies.times)
    assert len(times) > 3 * per_second  # long enough for the ceiling to matter
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    # Calls are spaced 1/8 s apart by the shared limiter; one extra for a window's two ends
    # and one for the jitter of a worker's way to the provider.
    assert busiest <= per_second + 2


def test_experiment_cli_on_ray(provider: FakeProvider, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    questions = tmp_path / "questions.txt"
    questions.write_text("Should cities ban cars?\n")
    args = [
        "experiment",
        "variants",
        "--pairs",
        "nurse",
        "--model",
        "openai/llama-small",
        "--endpoint",
        f"openai/llama-small={provider.api_base}",
        "--questions",
        str(questions),
        "--samples",
        "1",
        "--out",
        str(tmp_path / "exp"),
        "--protocol",
        "quick",
        "--embedder",
        "fake",
        "--json",
        "--ray",
        "--rate-limit",
        "openai=6000",
    ]
    assert main(args) == 0
    arms = {a["name"]: a["units"] for a in json.loads(capsys.readouterr().out)["arms"]}
    assert arms == {"topic": 1, "framework": 1}
