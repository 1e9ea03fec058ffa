"""Rendering user-authored Jinja templates (card bodies, protocol prompts) in a sandbox.

Cards are data from strangers: the body is rendered by Jinja's immutable sandbox (no attribute
access to Python internals, no mutation) with strict undefined variables, so a typo in a variable
name is an error naming the card and line rather than a silently empty prompt.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from council.errors import CardError, SourceError


@cache
def sandbox() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
        template = sandbox().from_string(source)
        return template.render(**variables).strip()
    except jinja2.TemplateSyntaxError as exc:
        raise error(
            path,
            f"template syntax error: {exc.message}",
            line=first_line + exc.lineno - 1,
            field=field,
        ) from None
    except SecurityError as exc:
        raise error(path, f"template refused by the sandbox: {exc}", field=field) from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables))
        raise error(
            path,
            f"template uses an undefined variable ({exc.message}); known: {known}",
            field=field,
        ) from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise error(path, f"template failed to render: {exc}", field=field) from None
