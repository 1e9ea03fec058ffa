"""The peer benchmark's workload run by council, one mode per fresh process.

    python -m bench.council_driver MODE API_BASE RUNS_DIR

MODE is ``first`` (one council, as a script would in a fresh interpreter), ``warm`` (one council
to warm up, then one timed) or ``concurrent`` (one warm-up, then 20 councils at once). Prints
one JSON line. The workload: 4 panel seats and a chair, 3 stages, 9 requests per council.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

QUESTION = "Should cities ban private cars from their centres?"
PANEL = ["popper", "kuhn", "hayek", "keynes"]
CONCURRENT = 20


def main(mode: str, api_base: str, runs_dir: str) -> None:
    from council import CallSettings, Council

    council = Council(
        PANEL,
        protocol="council",
        model="openai/bench",
        endpoints={"openai/bench": api_base},
        runs_dir=runs_dir,
        calls=CallSettings(timeout_s=60, max_attempts=1),
    )
    if mode == "first":
        result = council.convene(QUESTION)
        print(json.dumps({"requests": len(result.turns)}))
        return
    council.convene(QUESTION)  # warm: imports, connection pool, caches
    if mode == "warm":
        start = time.perf_counter()
        result = council.convene(QUESTION)
        print(json.dumps({"wall": time.perf_counter() - start, "requests": len(result.turns)}))
        return

    async def many() -> list[object]:
        return await asyncio.gather(
            *(council.aconvene(f"{QUESTION} #{i}") for i in range(CONCURRENT))
        )

    start = time.perf_counter()
    results = asyncio.run(many())
    print(json.dumps({"wall": time.perf_counter() - start, "councils": len(results)}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
