"""The render budget under fire: peak memory and time of rendering fuzzed card bodies.

Generates hostile and ordinary Jinja bodies from a fixed seed, renders each through the render
worker, and reports the worker's peak resident memory (VmHWM, read from /proc after every
render, across restarts), the slowest render, and the per-render cost of the worker against
rendering the same ordinary templates in this process (the baseline, same run).
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

ATOMS = [
    "0",
    "3",
    "100",
    "100000",
    "999999999",
    "'x'",
    "'%999999s'",
    "'{:>9999999}'",
    "name",
    "traits",
    "range(100000)",
    "range(3)",
]
OPERATORS = ["~", "+", "*", "%", "**", "//"]
FILTERS = [
    "join",
    "upper",
    "list",
    "center(1000000)",
    "indent(999999)",
    "batch(3)",
    "length",
    "replace('x', 'xxxxxxxxxxxxxxxx')",
    "wordwrap(2)",
    "sort",
]


def _expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(ATOMS)
    a, b = _expression(rng, depth - 1), _expression(rng, depth - 1)
    return rng.choice(
        [
            f"({a} {rng.choice(OPERATORS)} {b})",
            f"(({a})|{rng.choice(FILTERS)})",
            f"{a}.format({b})",
            f"[{a}, {b}]",
        ]
    )


def _body(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        return "{{ " + _expression(rng, 3) + " }}"
    inner = _body(rng, depth - 1)
    return rng.choice(
        [
            f"{{% for x in {_expression(rng, 2)} %}}{inner}{{% endfor %}}",
            f"{{% set s = {_expression(rng, 2)} %}}{{% set s = s ~ s ~ s %}}{inner}{{{{ s }}}}",
            f"{{% if {_expression(rng, 1)} %}}{inner}{{% endif %}}",
            inner + inner,
        ]
    )


def _worker_peak_kb() -> int:
    from council.text.templates import _WORKER

    process = _WORKER._process
    if process is None or process.poll() is not None:
        return 0
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def render_budget(count: int = 300) -> dict[str, Any]:
    from council.base.errors import CardError
    from council.text.templates import (
        RENDER_MEGABYTES,
        RENDER_SECONDS,
        render_here,
        render_template,
    )

    rng = random.Random(7)
    variables = {"name": "fuzz", "traits": ["a", "b"]}
    peak_kb, slowest, refused = 0, 0.0, 0
    worker_times: list[float] = []
    ordinary: list[str] = []
    for _ in range(count):
        body = _body(rng, 3)
        start = time.perf_counter()
        try:
            render_template(body, variables, path="fuzz.md")
            ordinary.append(body)
        except CardError:
            refused += 1
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        worker_times.append(elapsed)
        peak_kb = max(peak_kb, _worker_peak_kb())
    plain = "Hello {{ name }}: {% for t in traits %}{{ t }} {% endfor %}"
    in_worker, in_process = [], []
    for i in range(500):
        values = {**variables, "name": f"fuzz {i}"}  # a new render each time: no cache
        start = time.perf_counter()
        render_template(plain, values, path="p.md")
        in_worker.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_here(plain, values)
        in_process.append(time.perf_counter() - start)
    return {
        "fuzzed_bodies": count,
        "refused": refused,
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        "worker_address_space_limit_mb": RENDER_MEGABYTES,
        "slowest_render_seconds": round(slowest, 2),
        "render_time_budget_seconds": RENDER_SECONDS,
        "median_render_ms": round(statistics.median(worker_times) * 1000, 3),
        "ordinary_render_ms_worker": round(statistics.median(in_worker) * 1000, 3),
        "ordinary_render_ms_in_process": round(statistics.median(in_process) * 1000, 3),
    }
