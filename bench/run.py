"""council's benchmarks: every figure is a ratio against a baseline measured in the same run.

    make bench      # writes bench/results.json and bench/results.md

Not part of the tests: timings depend on the machine. Each section prints as it finishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The in-process sections measure calls made here, beside a litellm baseline made here; the
# peer section turns the warm worker on for the fresh processes it starts.
os.environ.setdefault("COUNCIL_WARM_WORKER", "off")

import numpy as np

from bench.activations import activations
from bench.peer import peer
from bench.protocols import BROADCAST_4, LATEST_4, ROUNDS_4
from bench.render import render_budget
from bench.warm_workers import warm_workers
from council import Council, SamplingSettings
from council.protocols import compile_protocol
from council.seats import CallSettings, ModelRequest, make_model
from council.testing import FakeProvider, ScriptedModel

HERE = Path(__file__).resolve().parent
THINKERS = [
    "popper",
    "kuhn",
    "hayek",
    "keynes",
    "meadows",
    "taleb",
    "socrates",
    "machiavelli",
    "arendt",
    "hobbes",
    "ostrom",
    "hardin",
]
QUESTION = "Should cities ban private cars from their centres?"
NO_RETRY = CallSettings(timeout_s=30, max_attempts=1)


def protocol(text: str) -> Any:
    return compile_protocol(text, HERE / "protocols.py")


def orchestration() -> dict[str, Any]:
    """A 12-seat, 4-round council at a fixed 100 ms per call: wall time over the critical path
    (the sum over stages of the slowest call), and the same calls made one after another."""
    with FakeProvider("An answer of a few words.", latency_s=0.1) as fake:
        endpoints = {"openai/bench": fake.api_base}
        council = Council(
            THINKERS,
            protocol=protocol(ROUNDS_4),
            model="openai/bench",
            endpoints=endpoints,
            runs_dir=None,
            calls=NO_RETRY,
        )
        council.convene(QUESTION)  # warm litellm and the connection pool
        start = time.perf_counter()
        result = council.convene(QUESTION)
        wall = time.perf_counter() - start
        slowest: dict[tuple[str, int], float] = {}
        for turn in result.turns:
            key = (turn.stage, turn.round)
            slowest[key] = max(slowest.get(key, 0.0), turn.latency_s)
        critical = sum(slowest.values())

        async def sequential() -> float:
            from council.seats.litellm_model import import_litellm

            litellm = import_litellm()
            began = time.perf_counter()
            for _ in result.turns:
                await litellm.acompletion(
                    model="openai/bench",
                    api_base=fake.api_base,
                    api_key="x",
                    messages=[{"role": "user", "content": QUESTION}],
                    max_tokens=50,
                )
            return time.perf_counter() - began

        plain = asyncio.run(sequential())
    return {
        "calls": len(result.turns),
        "wall_seconds": round(wall, 3),
        "critical_path_seconds": round(critical, 3),
        "wall_over_critical_path": round(wall / critical, 3),
        "sequential_loop_seconds": round(plain, 3),
        "sequential_over_council": round(plain / wall, 2),
    }


def call_overhead(samples: int = 300) -> dict[str, Any]:
    """Median time a seat call adds over a bare litellm.acompletion to the same server."""
    with FakeProvider("ok") as fake:
        model = make_model(
            "openai/bench", endpoints={"openai/bench": fake.api_base}, settings=NO_RETRY
        )
        messages = [{"role": "user", "content": QUESTION}]
        request = ModelRequest(stage="s", messages=messages, max_tokens=20, temperature=0.0)

        async def measure() -> tuple[list[float], list[float]]:
            from council.seats.litellm_model import import_litellm

            litellm = import_litellm()
            bare, seat = [], []
            for i in range(samples + 20):  # interleaved, so drift hits both alike
                t = time.perf_counter()
                await litellm.acompletion(
                    model="openai/bench",
                    api_base=fake.api_base,
                    api_key="no-key",
                    messages=messages,
                    max_tokens=20,
                    temperature=0.0,
                    timeout=30,
                    num_retries=0,
                )
                middle = time.perf_counter()
                await model.complete(request)
                end = time.perf_counter()
                if i >= 20:  # warm-up
                    bare.append(middle - t)
                    seat.append(end - middle)
            return bare, seat

        bare, seat = asyncio.run(measure())
    # The engine's own cost per turn, with no network: a deliberation on a scripted model.
    council = Council(
        THINKERS, protocol=protocol(ROUNDS_4), model=ScriptedModel(default="ok"), runs_dir=None
    )
    start = time.perf_counter()
    result = council.convene(QUESTION)
    engine = (time.perf_counter() - start) / len(result.turns)
    return {
        "bare_litellm_median_ms": round(statistics.median(bare) * 1000, 3),
        "seat_call_median_ms": round(statistics.median(seat) * 1000, 3),
        "overhead_ms_per_call": round(
            (statistics.median(seat) - statistics.median(bare)) * 1000, 3
        ),
        "engine_ms_per_turn_no_network": round(engine * 1000, 3),
    }


def scale(deliberations: int = 200) -> dict[str, Any]:
    """200 deliberations at once in one process against the loopback provider."""
    with FakeProvider("A short answer.", latency_s=0.05) as fake:
        council = Council(
            ["popper", "kuhn", "meadows"],
            protocol="quick",
            model="openai/bench",
            endpoints={"openai/bench": fake.api_base},
            runs_dir=None,
            calls=NO_RETRY,
        )

        async def many() -> list[Any]:
            return await asyncio.gather(
                *(council.aconvene(f"{QUESTION} #{i}") for i in range(deliberations))
            )

        start = time.perf_counter()
        results = asyncio.run(many())
        wall = time.perf_counter() - start
    calls = sum(len(r.turns) for r in results)
    return {
        "deliberations": deliberations,
        "completed": sum(r.status == "completed" for r in results),
        "calls": calls,
        "calls_per_second": round(calls / wall, 1),
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def meter(count: int = 2000) -> dict[str, Any]:
    """The meter's embedding throughput over raw SentenceTransformer.encode, same 2,000 texts."""
    import tempfile

    from council.meter.cache import CachedEmbedder
    from council.meter.embedders import default_embedder

    words = [
        "council",
        "persona",
        "model",
        "provider",
        "seat",
        "stage",
        "vote",
        "round",
        "drift",
        "voice",
        "city",
        "car",
    ]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=40)) + f" {i}" for i in range(count)]
    embedder = default_embedder()
    raw = embedder._load()
    raw.encode(texts[:64], batch_size=64)  # warm-up
    t = time.perf_counter()
    raw.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    raw_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as folder:
        cached = CachedEmbedder(embedder, Path(folder) / "cache.sqlite")
        t = time.perf_counter()
        cached.encode(texts)
        meter_s = time.perf_counter() - t
        t = time.perf_counter()
        cached.encode(texts)
        again_s = time.perf_counter() - t
    return {
        "texts": count,
        "raw_encode_seconds": round(raw_s, 3),
        "meter_encode_seconds": round(meter_s, 3),
        "encode_ratio": round(raw_s / meter_s, 3),
        "cached_reanalysis_seconds": round(again_s, 3),
        "cached_speedup": round(meter_s / again_s, 1),
    }


def vendi() -> dict[str, Any]:
    from council.meter import metrics

    figures: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for n in (1_000, 10_000, 100_000):
        X = rng.normal(size=(n, 384)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        tracemalloc.start()
        t = time.perf_counter()
        metrics.vendi_score(X)
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        label = {1_000: "n1k", 10_000: "n10k", 100_000: "n100k"}[n]
        figures[f"{label}_seconds"] = round(seconds, 3)
        figures[f"{label}_peak_mb"] = round(peak / 2**20, 1)
    # The baseline: the O(n³) definition on the n × n kernel, where it still fits.
    X = rng.normal(size=(2_000, 384))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    t = time.perf_counter()
    np.linalg.eigvalsh(X @ X.T / 2_000)
    naive = time.perf_counter() - t
    t = time.perf_counter()
    metrics.vendi_score(X)
    figures["n2k_kernel_over_covariance"] = round(naive / (time.perf_counter() - t), 1)
    return figures


def _command_seconds(command: list[str], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def startup() -> dict[str, Any]:
    python = _command_seconds([sys.executable, "-c", "pass"])
    imported = _command_seconds([sys.executable, "-c", "import council"])
    helped = _command_seconds([sys.executable, "-m", "council", "--help"])
    return {
        "python_seconds": round(python, 3),
        "import_seconds": round(imported, 3),
        "import_over_python": round(imported / python, 2),
        "help_seconds": round(helped, 3),
    }


def local_model(tokens: int = 96) -> dict[str, Any]:
    """Generation speed of the bundled model through a council over raw llama.cpp, same prompt."""
    from llama_cpp import Llama

    from council.seats.local import BUNDLED_MODELS, verified_path

    path = verified_path(BUNDLED_MODELS["smollm2-135m-instruct"])
    messages = [
        {"role": "system", "content": "You are Karl Popper."},
        {"role": "user", "content": QUESTION + " Answer at length."},
    ]
    llm = Llama(str(path), n_ctx=4096, n_threads=os.cpu_count() or 1, verbose=False)
    llm.create_chat_completion(messages=messages, max_tokens=8)  # warm-up
    rates = []
    for seed in range(3):
        t = time.perf_counter()
        out = llm.create_chat_completion(
            messages=messages, max_tokens=tokens, temperature=0.7, seed=seed
        )
        rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t))
    del llm
    model = make_model("local/smollm2-135m-instruct")

    async def through_council() -> list[float]:
        request = ModelRequest(stage="s", messages=messages, max_tokens=8, temperature=0.7)
        await model.complete(request)  # starts the server
        found = []
        for seed in range(3):
            request = ModelRequest(
                stage="s", messages=messages, max_tokens=tokens, temperature=0.7, seed=seed
            )
            t = time.perf_counter()
            completion = await model.complete(request)
            found.append((completion.completion_tokens or 0) / (time.perf_counter() - t))
        return found

    council_rates = asyncio.run(through_council())
    raw, ours = statistics.median(rates), statistics.median(council_rates)
    return {
        "raw_llama_cpp_tokens_per_second": round(raw, 1),
        "council_tokens_per_second": round(ours, 1),
        "tokens_per_second_ratio": round(ours / raw, 3),
    }


def tokens() -> dict[str, Any]:
    """Prompt tokens of four rounds where seats read the latest round, against four rounds where
    every seat reads the whole transcript (the naive broadcast design)."""
    answer = " ".join(["word"] * 120)
    counts = {}
    for name, text in (("council", LATEST_4), ("broadcast", BROADCAST_4)):
        model = ScriptedModel(default=answer)
        result = Council(
            THINKERS[:5],
            protocol=protocol(text),
            model=model,
            runs_dir=None,
            sampling=SamplingSettings(max_tokens=200),
        ).convene(QUESTION)
        counts[name] = sum(t.prompt_tokens or 0 for t in result.turns)
    return {
        "council_prompt_tokens": counts["council"],
        "broadcast_prompt_tokens": counts["broadcast"],
        "council_over_broadcast": round(counts["council"] / counts["broadcast"], 3),
        "note": "5 seats, 4 rounds and a synthesis, 120-word answers; words counted as tokens",
    }


def ray_scaling() -> dict[str, Any]:
    """Units per second in process against 1 and 2 Ray workers (bench/ray_scaling.py)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"skipped": "ray is not installed: pip install 'council[ray]'"}
    from bench.ray_scaling import ray_scaling as measure

    return measure()


def store_overhead(repeats: int = 15) -> dict[str, Any]:
    """What recording a run on disk adds to each stage: the peer workload (4 seats and a chair,
    3 stages, 9 calls) on a zero-latency provider with a runs folder on disk against the same
    council with none (runs_dir=None), interleaved; medians, closing the ledger included. The
    domain seat is chosen once, at construction (``question=``): its embedding is not the store's."""
    import tempfile

    panel = ["popper", "kuhn", "hayek", "keynes"]
    with (
        FakeProvider("An answer of a few words.") as fake,
        tempfile.TemporaryDirectory(dir=os.environ.get("COUNCIL_BENCH_DISK", str(HERE))) as disk,
    ):
        endpoints = {"openai/bench": fake.api_base}
        councils = {
            where: Council(
                panel,
                protocol="council",
                model="openai/bench",
                calls=NO_RETRY,
                endpoints=endpoints,
                runs_dir=runs_dir,
                question=QUESTION,
            )
            for where, runs_dir in (("disk", Path(disk)), ("none", None))
        }
        walls: dict[str, list[float]] = {"disk": [], "none": []}
        stages = 0
        for i in range(repeats + 2):  # interleaved, so drift hits both alike; two to warm up
            for where, council in councils.items():
                start = time.perf_counter()
                result = council.convene(QUESTION)
                if i >= 2:
                    walls[where].append(time.perf_counter() - start)
                stages = len({(turn.stage, turn.round) for turn in result.turns})
    disk_s, none_s = statistics.median(walls["disk"]), statistics.median(walls["none"])
    return {
        "stages": stages,
        "calls": len(result.turns),
        "run_on_disk_ms_median": round(disk_s * 1000, 2),
        "run_without_store_ms_median": round(none_s * 1000, 2),
        "store_ms_per_stage": round((disk_s - none_s) * 1000 / stages, 2),
    }


SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "orchestration": orchestration,
    "overhead": call_overhead,
    "scale": scale,
    "store_overhead": store_overhead,
    "meter": meter,
    "vendi": vendi,
    "startup": startup,
    "local_model": local_model,
    "tokens": tokens,
    "render_budget": render_budget,
    "peer": peer,
    "warm_workers": warm_workers,
    "ray_scaling": ray_scaling,
    "activations": activations,
}
TARGETS = {
    ("orchestration", "wall_over_critical_path"): ("<=", 1.05),
    ("orchestration", "overhead_ms_per_call"): ("<=", 1.0),
    ("meter", "encode_ratio"): (">=", 0.9),
    ("vendi", "n100k_seconds"): ("<=", 2.0),
    ("startup", "import_seconds"): ("<=", 0.15),
    ("startup", "help_seconds"): ("<=", 0.4),
    ("render_budget", "worker_peak_rss_mb"): ("<=", 512),
    ("render_budget", "slowest_render_seconds"): ("<=", 2.5),
    ("peer", "council_start_to_first_request_s_median"): ("<=", 0.5),
    ("peer", "council_cli_start_to_first_request_s_median"): ("<=", 0.5),
    ("peer", "ratio_start_to_first_request_s"): ("<=", 1.0),
    ("peer", "ratio_cli_start_to_first_request_s"): ("<=", 1.0),
    ("peer", "ratio_warm_wall_over_critical_path"): ("<=", 1.0),
    ("peer", "ratio_councils_per_second"): (">=", 1.0),
    ("store_overhead", "store_ms_per_stage"): ("<=", 2.0),
    ("warm_workers", "workers_alive_after"): ("<=", 1),
}


def main() -> None:
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    only = sys.argv[1:]
    if only and (HERE / "results.json").is_file():  # rerun some sections, keep the others
        results = {**json.loads((HERE / "results.json").read_text()), **results}
    for name, section in SECTIONS.items():
        if only and name not in only:
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = section()
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    # The key for the per-call overhead sits under orchestration.
    if "overhead" in results:
        results.setdefault("orchestration", {})["overhead_ms_per_call"] = results["overhead"][
            "overhead_ms_per_call"
        ]
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# council benchmarks",
        "",
        f"{results['date']} on {results['machine']['platform']}, Python {results['machine']['python']}, "
        f"{results['machine']['cpus']} CPUs. Each figure is measured beside its baseline in the same run.",
        "",
    ]
    for section, figures in results.items():
        if section in ("machine", "date"):
            continue
        lines += [f"## {section}", "", "| figure | value | target |", "|---|---|---|"]
        for key, value in figures.items():
            target = TARGETS.get((section, key))
            mark = ""
            if target and isinstance(value, (int, float)):
                ok = value <= target[1] if target[0] == "<=" else value >= target[1]
                mark = f"{target[0]} {target[1]} {'met' if ok else 'missed'}"
            lines.append(f"| {key} | {value} | {mark} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
