"""Rendering user-authored Jinja templates (card bodies, protocol prompts) within a budget of
time and memory.

Templates render in Jinja's sandbox (``council.text.sandbox``). Against everything the sandbox
does not know, renders run in a worker process (``council.text.template_worker``) with an
address-space limit, killed when one outlives ``RENDER_SECONDS``: no template can take the host's
memory or a core for longer than that. The worker is a child of ``council.base.processes``: it
dies with this process, however this process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import select
import subprocess
import threading
from functools import lru_cache
from typing import IO, Any

import jinja2

from council.base.errors import CardError, SourceError
from council.base.processes import ended, spawn
from council.text import template_worker
from council.text.sandbox import TemplateProblem, render_here, sandbox

RENDER_SECONDS = 2.0  # one render's time budget
RENDER_MEGABYTES = 512  # the render worker's address space, interpreter included


class _RenderWorker:
    """The client side of ``council.text.template_worker``: one child, started on first use,
    restarted after it is killed, shared by every thread (renders are short)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        atexit.register(self.stop)

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self.stop()  # one that died: its lease goes
            self._process = spawn(
                template_worker.__name__,
                [str(RENDER_MEGABYTES)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._process

    def warm(self) -> None:
        """Start the child now without waiting for it: its start-up overlaps the caller's."""
        with self._lock, contextlib.suppress(OSError):
            self._start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            ended(self._process)
            self._process = None

    def render(self, request: str) -> dict[str, Any]:
        with self._lock:
            process = self._start()
            stdin, stdout = process.stdin, process.stdout
            assert stdin is not None and stdout is not None
            try:
                stdin.write(request.encode("utf-8") + b"\n")
                stdin.flush()
                reply = self._reply(stdout)
            except OSError:
                reply = None
            if reply is None:
                self.stop()
                raise TemplateProblem(
                    f"template takes longer than {RENDER_SECONDS:g} s or more than "
                    f"{RENDER_MEGABYTES} MB to render",
                    kind="budget",
                )
            return reply

    @staticmethod
    def _reply(stdout: IO[bytes]) -> dict[str, Any] | None:
        ready, _, _ = select.select([stdout], [], [], RENDER_SECONDS)
        line = stdout.readline() if ready else b""
        return json.loads(line) if line else None


_WORKER = _RenderWorker()


def start_render_worker() -> None:
    """Start the render worker in the background, as soon as renders are certain (a council
    is being seated), so the first render finds it up instead of starting it."""
    _WORKER.warm()


@lru_cache(maxsize=4096)
def _render_request(request: str) -> dict[str, Any]:
    return _WORKER.render(request)


def render_bounded(source: str, variables: dict[str, Any]) -> str:
    """``render_here`` in the render worker: the same result, within the render budget.

    Identical renders (a stage prompt checked before the run, then sent) are answered from a
    cache. Where no worker can be started, the render runs here, in the sandbox alone.
    """
    request = json.dumps({"source": source, "variables": variables}, default=str, sort_keys=True)
    try:
        reply = _render_request(request)
    except OSError:  # no child process can be started here
        return render_here(source, variables)
    if "text" in reply:
        return str(reply["text"])
    raise TemplateProblem(reply["problem"], reply.get("line"), reply.get("kind", "render"))


def render_template(
    source: str,
    variables: dict[str, Any],
    *,
    path: Any,
    first_line: int = 1,
    error: type[SourceError] = CardError,
    field: str | None = None,
) -> str:
    """Render a Jinja template from a user file, within the render budget (time and memory,
    enforced by the render worker); every failure becomes ``error`` naming file and line."""
    try:
        return render_bounded(source, variables)
    except TemplateProblem as problem:
        line = first_line + problem.line - 1 if problem.line is not None else None
        raise error(path, problem.message, line=line, field=field) from None


def check_syntax(
    source: str, *, path: Any, first_line: int, error: type[SourceError], field: str
) -> None:
    """Parse a template without rendering it, so a syntax error costs nothing at run time."""
    try:
        sandbox().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise error(
            path,
            f"template syntax error: {exc.message}",
            line=first_line + (exc.lineno or 1) - 1,
            field=field,
        ) from None
    except RecursionError:
        raise error(path, "template nests too deeply", field=field) from None
