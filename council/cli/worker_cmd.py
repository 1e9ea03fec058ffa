"""``council worker``: the warm workers alive for this user (pid, memory, last use), and
stopping them. A worker makes model calls for council processes that start after it (see
council/seats/warm.py); it ends by itself after COUNCIL_WARM_WORKER_IDLE_S idle seconds."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def _status(args: argparse.Namespace) -> int:
    from council.seats import warm

    workers = warm.live_workers()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "socket": str(w.socket),
                        "pid": w.pid,
                        "serving": w.serving,
                        "idle_s": round(time.time() - w.last_used, 1),
                        "rss_mb": w.rss_mb,
                        "this_install": w.socket == warm.socket_path(),
                    }
                    for w in workers
                ],
                indent=2,
            )
        )
        return 0
    if not workers:
        print("no warm worker alive")
        return 0
    for w in workers:
        state = "serving" if w.serving else "starting"
        rss = f"{w.rss_mb:.0f} MiB" if w.rss_mb is not None else "? MiB"
        mine = "  (this install)" if w.socket == warm.socket_path() else ""
        idle = time.time() - w.last_used
        print(f"pid {w.pid or '?'}  {state}  {rss}  idle {idle:.0f} s{mine}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from council.seats import warm

    workers = warm.live_workers()
    for w in workers:  # a worker whose socket and lock file are gone finishes its calls, exits
        for path in (w.socket, w.socket.with_suffix(".lock")):
            path.unlink(missing_ok=True)
    print(f"stopping {len(workers)} warm worker(s)")
    return 0


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="the warm workers alive for this user: memory, last use; stop them",
        description="A warm worker keeps litellm imported and makes the model calls of council "
        "processes that start after it: one per user and install, shared by every shell.",
    )
    actions = worker.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="each worker: pid, memory (RSS), idle time")
    status.add_argument("--json", action="store_true", help="JSON on stdout")
    status.set_defaults(handler=_status)
    stop = actions.add_parser("stop", help="stop every worker once its calls are answered")
    stop.set_defaults(handler=_stop)
