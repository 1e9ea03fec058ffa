"""Units per second on the bundled model: the in-process runner against 1 and 2 Ray workers.

    PYTHONPATH=.:SITE python -m bench.ray_scaling     # prints the figures as JSON

Tiny units (two seats and a chair, a blind round and a synthesis, 16 tokens a call) so the
run stays short on two cores. Each mode first runs a few warm-up units (the llama.cpp server
starts, litellm loads), then the timed units on a fresh experiment folder; every unit is
recorded in the driver's ledger as in a real run. Needs ``ray`` importable.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from council.app.experiments.executors import Executor, InProcessExecutor
from council.app.experiments.runner import Arm, ExperimentPlan, run_plan
from council.seats.local import DEFAULT_LOCAL_MODEL, LOCAL_SERVERS

QUESTIONS = [
    "Should cities ban private cars from their centres?",
    "Should libraries open on Sundays?",
]
WARM_UNITS = 1
TIMED_SAMPLES = 2  # units = len(QUESTIONS) x samples


class _KeptOpen:
    """An executor that outlives one ``run_plan`` so the warm-up's server serves the timing."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.name = inner.name

    def map(self, fn: Any, tasks: Any) -> Any:
        return self.inner.map(fn, tasks)

    def close(self) -> None:
        pass


def _plan(out: Path, questions: list[str], samples: int) -> ExperimentPlan:
    arm = Arm("bundled", [DEFAULT_LOCAL_MODEL], ["popper", "kuhn"])
    return ExperimentPlan(
        arms=[arm],
        questions=questions,
        samples=samples,
        out=out,
        protocol="quick",
        max_tokens=16,
        placebo=False,
        baseline_samples=0,
    )


def _measure(executor: Executor, folder: Path) -> dict[str, Any]:
    kept = _KeptOpen(executor)
    run_plan(_plan(folder / "warm", QUESTIONS[:1], WARM_UNITS), executor=kept)
    walls: list[float] = []

    def note(line: str) -> None:
        walls.append(float(line.rsplit("(", 1)[1].split(" s)")[0]))

    start = time.perf_counter()
    counts = run_plan(_plan(folder / "timed", QUESTIONS, TIMED_SAMPLES), note, executor=kept)
    seconds = time.perf_counter() - start
    executor.close()
    statuses = [json.loads(line)["status"] for line in (folder / "timed" / "units.jsonl").open()]
    if statuses != ["completed"] * len(statuses):
        raise RuntimeError(f"{executor.name}: units did not complete: {statuses}")
    return {
        "units": counts["ran"],
        "seconds": round(seconds, 2),
        "units_per_second": round(counts["ran"] / seconds, 3),
        "mean_unit_seconds": round(sum(walls) / len(walls), 2),
    }


def _on_ray(cpus: int, folder: Path) -> dict[str, Any]:
    import ray

    from council.app.experiments.ray_executor import RayExecutor

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        return _measure(RayExecutor(max_in_flight=cpus), folder)
    finally:
        ray.shutdown()


def _in_process(folder: Path) -> dict[str, Any]:
    try:
        return _measure(InProcessExecutor(), folder)
    finally:
        LOCAL_SERVERS.stop_all()  # each mode starts its own server, as it would on a node


def ray_scaling() -> dict[str, Any]:
    """The baseline is measured before and after the Ray runs and averaged: on a shared
    machine the load drifts over minutes, and a one-sided baseline would read as speedup."""
    with tempfile.TemporaryDirectory(prefix="council-ray-bench-") as tmp:
        folder = Path(tmp)
        before = _in_process(folder / "in-process-before")
        one = _on_ray(1, folder / "ray-1")
        two = _on_ray(2, folder / "ray-2")
        after = _in_process(folder / "in-process-after")
    base = (before["units_per_second"] + after["units_per_second"]) / 2
    here = {
        **before,
        "mean_unit_seconds": (before["mean_unit_seconds"] + after["mean_unit_seconds"]) / 2,
    }
    return {
        "in_process_before_units_per_second": before["units_per_second"],
        "in_process_after_units_per_second": after["units_per_second"],
        "in_process_units_per_second": round(base, 4),
        "ray_1_worker_units_per_second": one["units_per_second"],
        "ray_2_workers_units_per_second": two["units_per_second"],
        "ray_1_over_in_process": round(one["units_per_second"] / base, 3),
        "ray_2_over_in_process": round(two["units_per_second"] / base, 3),
        "ray_2_over_ray_1": round(two["units_per_second"] / one["units_per_second"], 3),
        "in_process_mean_unit_seconds": round(here["mean_unit_seconds"], 2),
        "units_each": here["units"],
        "cpus": os.cpu_count(),
        "note": "one node, one llama.cpp server per node (all its cores); 2 seats + chair, "
        "3 calls of <= 16 tokens a unit",
    }


if __name__ == "__main__":
    print(json.dumps(ray_scaling(), indent=2))
    sys.exit(0)
