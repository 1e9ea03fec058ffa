"""Rendering user-authored Jinja templates (card bodies, protocol prompts) in a sandbox.

Cards are data from strangers: the body is rendered by Jinja's immutable sandbox (no attribute
access to Python internals, no mutation) with strict undefined variables, so a typo in a variable
name is an error naming the card and line rather than a silently empty prompt. The sandbox also
refuses the cheap ways to exhaust memory or time (``'a' * 10**10``, ``2 ** 10**9``, a filter
asked for a width of a billion, ``lipsum``) and caps the rendered size.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from council.errors import CardError, SourceError

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


def render_template(
    source: str,
    variables: dict[str, Any],
    *,
    path: Any,
    first_line: int = 1,
    error: type[SourceError] = CardError,
    field: str | None = None,
) -> str:
    """Render a Jinja template from a user file; every failure becomes ``error`` with a line."""
    try:
        rendered = _compiled(source).render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        raise error(
            path, f"template syntax error: {exc.message}", line=first_line + (exc.lineno or 1) - 1,
            field=field,
        ) from None  # fmt: skip
    except SecurityError as exc:
        raise error(path, f"template refused by the sandbox: {exc}", field=field) from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables))
        raise error(
            path, f"template uses an undefined variable ({exc.message}); known: {known}",
            field=field,
        ) from None  # fmt: skip
    except RecursionError:
        raise error(path, "template nests or recurses too deeply", field=field) from None
    except MemoryError:
        raise error(path, "template needs too much memory to render", field=field) from None
    except (
        jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AssertionError,
    ) as exc:  # fmt: skip
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise error(path, f"template failed to render: {message}", field=field) from None
    if len(rendered) > MAX_OUTPUT_CHARS:
        raise error(
            path, f"template renders {len(rendered)} characters; at most {MAX_OUTPUT_CHARS}",
            field=field,
        )  # fmt: skip
    return rendered.strip()


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
