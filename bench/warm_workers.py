"""How many warm workers a user's shells leave alive: five councils convened at once from five
environments that differ in variables no call reads (a shell's, a script's) and in their
provider keys, against the fake server; then the workers alive in their private folder are
counted (target: one per user and install) and the idle one's memory is read.

Model base and key come from each environment (``OPENAI_API_BASE``, ``OPENAI_API_KEY``), so
they reach the shared worker only with the calls: the fake server counts which key each
request carried, and every environment's council must have used its own key and no other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from council.seats import warm
from council.testing import FakeProvider

ENVIRONMENTS = 5
REQUESTS_PER_COUNCIL = 9  # 4 seats and a chair, 3 stages
HERE = Path(__file__).resolve().parent


def _council(folder: Path) -> list[str]:
    return [
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
        "--out",
        str(folder / "runs"),
        "--quiet",
        "--attempts",
        "1",
    ]


def _environment(number: int, runtime: str, api_base: str) -> dict[str, str]:
    """One shell's environment: its own unrelated variables and its own provider key."""
    return {
        **os.environ,
        "PYTHONPATH": str(HERE.parent),
        "XDG_RUNTIME_DIR": runtime,
        "COUNCIL_WARM_WORKER": "on",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_BASE": api_base,
        "OPENAI_API_KEY": f"sk-bench-shell-{number}",
        "BENCH_SHELL": str(number),
        "OLDPWD": f"/tmp/shell-{number}",
        "SHLVL": str(number),
        "TERM": ["xterm", "screen", "dumb", "tmux-256color", "vt100"][number % 5],
    }


def _start(number: int, runtime: str, api_base: str, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _council(tmp / str(number)),
        cwd=tmp,
        env=_environment(number, runtime, api_base),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def warm_workers() -> dict[str, Any]:
    runtime = tempfile.mkdtemp(prefix="cwb-")  # short: a socket path has at most 108 bytes
    folder = Path(runtime) / f"council-{os.getuid()}"
    keys: Counter[str] = Counter()
    try:
        with (
            FakeProvider("A short answer.", latency_s=0.1) as fake,
            tempfile.TemporaryDirectory() as tmp,
        ):
            began = time.perf_counter()
            shells = [
                _start(number, runtime, fake.api_base, Path(tmp)) for number in range(ENVIRONMENTS)
            ]
            failed = [shell.communicate()[1].decode()[-400:] for shell in shells]
            wall = time.perf_counter() - began
            if any(shell.returncode for shell in shells):
                raise RuntimeError(f"a council failed: {[f for f in failed if f]}")
            for headers in fake.headers:
                lowered = {name.lower(): value for name, value in headers.items()}
                keys[lowered.get("authorization", "").removeprefix("Bearer ")] += 1
        time.sleep(1.0)  # idle: what the worker holds between councils
        alive = warm.live_workers(folder)
        own_keys = all(
            keys[f"sk-bench-shell-{n}"] == REQUESTS_PER_COUNCIL for n in range(ENVIRONMENTS)
        )
        return {
            "environments": ENVIRONMENTS,
            "workers_alive_after": len(alive),
            "idle_worker_rss_mb": alive[0].rss_mb if alive else None,
            "each_council_used_its_own_key": own_keys and len(keys) == ENVIRONMENTS,
            "requests": sum(keys.values()),
            "councils_wall_s": round(wall, 3),
        }
    finally:
        for worker in warm.live_workers(folder):  # it sees its socket gone and exits
            for path in (worker.socket, worker.socket.with_suffix(".lock")):
                path.unlink(missing_ok=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    print(warm_workers())
