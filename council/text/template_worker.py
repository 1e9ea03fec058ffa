"""The render worker: a child process that renders untrusted templates under hard limits.

The sandbox refuses the constructs it knows to be expensive; this process bounds the ones it
does not. It runs with an address-space limit (``RLIMIT_AS``), so a template that grows a
string without end gets a ``MemoryError`` here instead of taking the host's memory, and its
parent kills it when a render outlives its time budget (a loop of a billion steps). It reads
one JSON request per line on stdin and answers one JSON line on stdout; it exits at EOF.
"""

from __future__ import annotations

import json
import resource
import sys

from council.text.sandbox import TemplateProblem, render_here


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve() -> None:
    for line in sys.stdin.buffer:
        request = json.loads(line)
        reply: dict[str, object]
        try:
            reply = {"text": render_here(request["source"], request["variables"])}
        except TemplateProblem as problem:
            reply = {"problem": problem.message, "line": problem.line, "kind": problem.kind}
        except MemoryError:
            reply = {"problem": "template needs too much memory to render", "kind": "memory"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _limit_memory(int(sys.argv[1]))
    serve()
