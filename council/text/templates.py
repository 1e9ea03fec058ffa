"""Rendering user-authored Jinja templates (card bodies, protocol prompts) in a sandbox,
within a budget of time and memory.

Cards are data from strangers: the body is rendered by Jinja's immutable sandbox (no attribute
access to Python internals, no mutation) with strict undefined variables, so a typo in a variable
name is an error naming the card and line rather than a silently empty prompt. The sandbox also
refuses the cheap ways to exhaust memory or time (``'a' * 10**10``, ``2 ** 10**9``, a filter
asked for a width of a billion, ``lipsum``) and caps the rendered size. Against everything it
does not know, renders run in a worker process (``council.text.template_worker``) with an address-
space limit, killed when one outlives ``RENDER_SECONDS``: no template can take the host's memory
or a core for longer than that. The worker is a child of ``council.base.processes``: it dies with
this process, however this process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import select
import subprocess
import threading
from functools import cache, lru_cache
from typing import IO, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from council.base.errors import CardError, SourceError
from council.base.processes import ended, spawn

MAX_OUTPUT_CHARS = 200_000  # a system prompt longer than this is a mistake or an attack
_MAX_REPEAT = 10_000  # 'x' * n, [..] * n
_MAX_EXPONENT = 1_000
_MAX_WIDTH = 1_000  # center, indent, wordwrap, truncate, format widths
RENDER_SECONDS = 2.0  # one render's time budget
RENDER_MEGABYTES = 512  # the render worker's address space, interpreter included


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is too large for a template")
        if operator == "*":
            for value, count in ((left, right), (right, left)):
                sequence = isinstance(value, str | list | tuple) and isinstance(count, int)
                if sequence and count * max(len(value), 1) > _MAX_REPEAT:
                    raise SecurityError("repetition too large for a template")
        return super().call_binop(context, operator, left, right)


def _bounded(name: str, filter_function: Any, position: int) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        width = args[position] if len(args) > position else next(iter(kwargs.values()), 0)
        if isinstance(width, int) and abs(width) > _MAX_WIDTH:
            raise SecurityError(f"filter '{name}' width {width} is too large for a template")
        return filter_function(*args, **kwargs)

    # Keep Jinja's marker for filters that receive the environment or context first.
    if hasattr(filter_function, "jinja_pass_arg"):
        bounded.jinja_pass_arg = filter_function.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


@cache
def sandbox() -> ImmutableSandboxedEnvironment:
    environment = _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.pop("lipsum", None)
    for name, position in (("center", 1), ("indent", 1), ("wordwrap", 2), ("truncate", 2)):
        environment.filters[name] = _bounded(name, environment.filters[name], position)
    return environment


@lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    # Compiling is most of a render's cost; each prompt is rendered once per seat and round.
    return sandbox().from_string(source)


class TemplateProblem(Exception):
    """Why a template could not render; ``line`` is 1-based within the template."""

    def __init__(self, message: str, line: int | None = None, kind: str = "render") -> None:
        super().__init__(message)
        self.message, self.line, self.kind = message, line, kind


def render_here(source: str, variables: dict[str, Any]) -> str:
    """Render in this process, in the sandbox; every failure is a ``TemplateProblem``."""
    try:
        rendered = _compiled(source).render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno or 1) from None
    except SecurityError as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables))
        raise TemplateProblem(
            f"template uses an undefined variable ({exc.message}); known: {known}"
        ) from None
    except RecursionError:
        raise TemplateProblem("template nests or recurses too deeply") from None
    except MemoryError:
        raise TemplateProblem("template needs too much memory to render", kind="memory") from None
    except (
        jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AssertionError,
    ) as exc:  # fmt: skip
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemplateProblem(f"template failed to render: {message}") from None
    # The cap is on what the template adds: text handed in (a long question) may appear once.
    limit = MAX_OUTPUT_CHARS + sum(len(v) for v in variables.values() if isinstance(v, str))
    if len(rendered) > limit:
        raise TemplateProblem(f"template renders {len(rendered)} characters; at most {limit}")
    return rendered.strip()


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
                "council.text.template_worker", [str(RENDER_MEGABYTES)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
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
                    f"{RENDER_MEGABYTES} MB to render", kind="budget",
                )  # fmt: skip
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
            path, f"template syntax error: {exc.message}", line=first_line + (exc.lineno or 1) - 1,
            field=field,
        ) from None  # fmt: skip
    except RecursionError:
        raise error(path, "template nests too deeply", field=field) from None
