"""The sandbox user-authored Jinja templates (card bodies, protocol prompts) render in.

Cards are data from strangers: the body is rendered by Jinja's immutable sandbox (no attribute
access to Python internals, no mutation) with strict undefined variables, so a typo in a variable
name is an error naming the card and line rather than a silently empty prompt. The sandbox also
refuses the cheap ways to exhaust memory or time (``'a' * 10**10``, ``2 ** 10**9``, a filter
asked for a width of a billion, ``lipsum``) and caps the rendered size. What it does not know is
bounded by the render worker (``template_worker``), which renders with ``render_here``.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_OUTPUT_CHARS = 200_000  # a system prompt longer than this is a mistake or an attack
_MAX_REPEAT = 10_000  # 'x' * n, [..] * n
_MAX_EXPONENT = 1_000
_MAX_WIDTH = 1_000  # center, indent, wordwrap, truncate, format widths


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
        jinja2.TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        LookupError,
        AssertionError,
    ) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemplateProblem(f"template failed to render: {message}") from None
    # The cap is on what the template adds: text handed in (a long question) may appear once.
    limit = MAX_OUTPUT_CHARS + sum(len(v) for v in variables.values() if isinstance(v, str))
    if len(rendered) > limit:
        raise TemplateProblem(f"template renders {len(rendered)} characters; at most {limit}")
    return rendered.strip()
