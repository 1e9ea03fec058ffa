"""council beside its closest installable peer, llm-council-core, on one workload in one run.

The peer is installed, pinned, into its own virtual environment under a cache folder (never the
project's), and pointed at the same loopback fake server through its own YAML config. Both tools
run the same council (4 panel models and a chair, 3 stages, 9 requests, 100 ms per request) in
fresh processes, alternately, 3 repetitions each; every figure is reported as min and median,
and as the ratio council/peer of the medians and of the minimums (below 1: council is faster;
for the rate, above 1).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from council.testing import FakeProvider

PEER = "llm-council-core==0.53.0"
LATENCY_S = 0.1
STAGES = 3
REPEATS = 3
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("COUNCIL_BENCH_CACHE", Path.home() / ".cache" / "council"))


def peer_python() -> Path:
    """The peer's interpreter, installing it the first time (PyPI, pinned)."""
    venv = CACHE / ("bench-peer-" + PEER.replace("==", "-"))
    python = venv / "bin" / "python"
    if not (venv / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PEER], check=True)
        (venv / ".installed").touch()
    return python


def peer_config(api_base: str, folder: Path) -> Path:
    """The peer's YAML: four council models and a chair, all on the fake server through the
    OpenRouter gateway, whose base_url is the full chat-completions URL."""
    path = folder / "llm_council.yaml"
    path.write_text(
        "council:\n"
        "  models: [openai/bench-a, anthropic/bench-b, google/bench-c, meta/bench-d]\n"
        "  chairman: openai/bench-chair\n"
        "gateways:\n"
        "  default: openrouter\n"
        "  providers:\n"
        "    openrouter:\n"
        f"      base_url: {api_base}/chat/completions\n"
        "      api_key: bench-key\n",
        encoding="utf-8",
    )
    return path


class Arrivals:
    """When each request reached the fake server (wall clock, comparable across processes)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def latency(self, _rng: object) -> float:
        with self._lock:
            self.times.append(time.time())
        return LATENCY_S

    def first_after(self, began: float) -> float | None:
        with self._lock:
            later = [t for t in self.times if t >= began]
        return min(later) - began if later else None


def _run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, dict[str, Any]]:
    if command[-1] == "--no-worker":  # council as it starts with no warm worker to hand calls to
        command, env = command[:-1], {**env, "COUNCIL_WARM_WORKER": "off"}
    began = time.time()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr.strip()[-800:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return began, json.loads(lines[-1]) if lines else {}


def _tools(api_base: str, folder: Path) -> dict[str, Callable[[str], list[str]]]:
    peer = str(peer_python())
    runs = str(folder / "runs")
    cli = [
        sys.executable,
        "-m",
        "council",
        "convene",
        "Should cities ban private cars?",
        "--personas",
        "popper,kuhn,hayek,keynes",
        "--protocol",
        "council",
        "--model",
        "openai/bench",
        "--endpoint",
        f"openai/bench={api_base}",
        "--out",
        runs,
        "--quiet",
        "--attempts",
        "1",
    ]
    driver = [sys.executable, "-m", "bench.council_driver"]
    return {
        "council": lambda mode: [*driver, mode, api_base, runs],
        "council_cli": lambda mode: cli,
        "council_no_worker": lambda mode: [*driver, mode, api_base, runs, "--no-worker"],
        "peer": lambda mode: [peer, str(HERE / "peer_driver.py"), mode],
    }


def measure(repeats: int = REPEATS) -> dict[str, dict[str, list[float]]]:
    """Every figure for every tool, the tools taking turns within each repetition."""
    arrivals = Arrivals()
    samples: dict[str, dict[str, list[float]]] = {}
    # Byte-compiled as pip installs the peer: with PYTHONDONTWRITEBYTECODE set, every council
    # process would otherwise compile its modules again.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(HERE.parent / "council")],
        check=True,
        capture_output=True,
    )
    with (
        FakeProvider("A short answer.", latency=arrivals.latency) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        env = {
            **os.environ,
            "LLM_COUNCIL_CONFIG": str(peer_config(fake.api_base, folder)),
            "PYTHONPATH": str(HERE.parent),
            "OPENROUTER_API_KEY": "bench-key",
            "COUNCIL_WARM_WORKER": "on",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        tools = _tools(fake.api_base, folder)
        for command in tools.values():  # not counted: starts council's warm worker, fills caches
            _run(command("first"), env, folder)
        for _ in range(repeats):
            for tool, command in tools.items():
                figures = samples.setdefault(tool, {})
                began, _ = _run(command("first"), env, folder)
                figures.setdefault("start_to_first_request_s", []).append(
                    arrivals.first_after(began) or float("nan")
                )
                figures.setdefault("cold_council_s", []).append(time.time() - began)
                if tool in ("council_cli", "council_no_worker"):
                    continue
                _, warm = _run(command("warm"), env, folder)
                figures.setdefault("warm_council_s", []).append(warm["wall"])
                _, many = _run(command("concurrent"), env, folder)
                figures.setdefault("councils_per_second", []).append(
                    many["councils"] / many["wall"]
                )
    return samples


def peer() -> dict[str, Any]:
    samples = measure()
    critical = STAGES * LATENCY_S
    for figures in samples.values():
        if "warm_council_s" in figures:
            figures["warm_wall_over_critical_path"] = [
                w / critical for w in figures["warm_council_s"]
            ]
    result: dict[str, Any] = {"peer": PEER, "repeats": REPEATS, "critical_path_s": critical}
    for tool, figures in samples.items():
        for name, values in figures.items():
            result[f"{tool}_{name}_min"] = round(min(values), 3)
            result[f"{tool}_{name}_median"] = round(statistics.median(values), 3)
    # The ratio of medians, and of minimums (the least disturbed run of each, on a busy
    # machine the steadier figure); "council_cli" and "council_no_worker" against the peer too.
    for tool in ("council", "council_cli", "council_no_worker"):
        prefix = "ratio_" + (tool.removeprefix("council_") + "_" if tool != "council" else "")
        for name, ours in samples[tool].items():
            theirs = samples["peer"][name]
            result[prefix + name] = round(statistics.median(ours) / statistics.median(theirs), 3)
            result[prefix + name + "_min"] = round(min(ours) / min(theirs), 3)
    return result


if __name__ == "__main__":
    print(json.dumps(peer(), indent=2))
