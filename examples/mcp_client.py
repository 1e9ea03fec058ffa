"""Talk to ``council mcp`` as a coding agent would: start it over stdio, list its tools,
convene a council with progress notifications, then ask for more councils at once than the
server takes, to see how many it holds before it answers busy.

Seats sit on ``FakeProvider`` (an OpenAI-compatible fault-injecting server on loopback, with
half a second of latency a call), reached through an endpoint the server was started allowing.
Run: ``python examples/mcp_client.py`` (needs ``pip install 'mcp==2.3.0'``).
"""

import asyncio
import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from mcp import Client, StdioServerParameters

from council.testing import FakeProvider

MAX_CONCURRENT = 3
ASKED_AT_ONCE = 6


async def main(runs: Path, api_base: str) -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "council", "mcp", "--allow-endpoints", "--out", str(runs),
              "--max-concurrent", str(MAX_CONCURRENT)],
        env={"PYTHONPATH": os.pathsep.join(sys.path), "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )  # fmt: skip
    ask = {
        "question": "Should cities ban private cars from their centres?",
        "personas": ["popper", "kuhn"], "protocol": "quick", "model": "openai/fake",
        "endpoints": {"openai/fake": api_base},
    }  # fmt: skip

    async def progress(done: float, total: float | None, message: str | None) -> None:
        print(f"  [{done:g}] {message}")

    async with Client(server) as client:
        print("tools:", ", ".join(t.name for t in (await client.list_tools()).tools))
        result = await client.call_tool("convene", ask, progress_callback=progress)
        run = result.structured_content or {}
        print(f"verdict ({run.get('status')}, run {run.get('run_id')}): {run.get('verdict')}")

        answers = await asyncio.gather(
            *(client.call_tool("convene", ask) for _ in range(ASKED_AT_ONCE))
        )
        held = sum(not a.is_error for a in answers)
        busy = sum(a.is_error and "busy" in str(a.content) for a in answers)
        print(f"{ASKED_AT_ONCE} asked at once: {held} convened, {busy} refused as busy "
              f"(--max-concurrent {MAX_CONCURRENT})")  # fmt: skip


if __name__ == "__main__":
    with TemporaryDirectory() as folder, FakeProvider("A fake answer.", latency_s=0.5) as fake:
        asyncio.run(main(Path(folder), fake.api_base))
