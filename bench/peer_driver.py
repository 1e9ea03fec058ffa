"""The peer benchmark's workload run by llm-council-core, in its own virtual environment.

    LLM_COUNCIL_CONFIG=peer.yaml PEER_PYTHON bench/peer_driver.py MODE

Mirrors bench/council_driver.py (same modes, same JSON line); never imports council. The
models, the chair and the fake server's URL come from the YAML file the benchmark writes.
"""

import asyncio
import json
import sys
import time

QUESTION = "Should cities ban private cars from their centres?"
CONCURRENT = 20


async def one(question: str) -> int:
    from llm_council import run_full_council

    stage1, stage2, _stage3, _meta = await run_full_council(question, bypass_cache=True)
    return len(stage1) + len(stage2) + 1


def main(mode: str) -> None:
    if mode == "first":
        print(json.dumps({"requests": asyncio.run(one(QUESTION))}))
        return
    asyncio.run(one(QUESTION))  # warm: imports, clients, caches
    if mode == "warm":
        start = time.perf_counter()
        requests = asyncio.run(one(QUESTION))
        print(json.dumps({"wall": time.perf_counter() - start, "requests": requests}))
        return

    async def many() -> list[int]:
        return await asyncio.gather(*(one(f"{QUESTION} #{i}") for i in range(CONCURRENT)))

    start = time.perf_counter()
    done = asyncio.run(many())
    print(json.dumps({"wall": time.perf_counter() - start, "councils": len(done)}))


if __name__ == "__main__":
    main(sys.argv[1])
