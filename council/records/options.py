"""A council's options, as users name them: the ``CouncilSpec`` fields that carry a ``Public``
marker, flattened (``calls.timeout_s`` is the option ``timeout``). The command line, the project
files, ``council config show`` and the MCP tool are all generated from this list, so an option
is added by adding its field to the spec."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from council.base.errors import ConfigError
from council.records.spec import SUB_MODELS, CouncilSpec, Public


@dataclass(frozen=True)
class Option:
    """One public field of the spec: where it sits (``path``), its field and its marker."""

    path: tuple[str, ...]  # ("calls", "timeout_s")
    info: FieldInfo
    public: Public

    @property
    def key(self) -> str:
        return self.public.key

    @property
    def flag(self) -> str:
        return "--" + (self.public.flag or self.key).replace("_", "-")

    @property
    def description(self) -> str:
        return self.info.description or ""

    @property
    def default(self) -> Any:
        return self.info.get_default(call_default_factory=True)

    @property
    def annotation(self) -> Any:
        """The field's type with ``None`` taken out of it: what a value given looks like."""
        kind: Any = self.info.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
        return kind

    @property
    def shape(self) -> str:
        """``flag`` (a switch), ``mapping`` (KEY=VALUE pairs), ``list`` or ``value``."""
        origin = typing.get_origin(self.annotation)
        if self.annotation is bool:
            return "flag"
        return {dict: "mapping", list: "list"}.get(origin, "value")

    def default_words(self) -> str | None:
        """The default as help and ``config show`` put it, or None when there is nothing to say."""
        if self.public.default_text:
            return self.public.default_text
        default = self.default
        if default is None or default in ({}, []):
            return None
        if isinstance(default, bool):
            return "on" if default else "off"
        return f"{default:g}" if isinstance(default, float) else str(default)

    def get(self, spec: CouncilSpec) -> Any:
        value: Any = spec
        for name in self.path:
            value = getattr(value, name)
        return value


def _fields(model: Any) -> dict[str, FieldInfo]:
    fields = getattr(model, "__pydantic_fields__", None)
    assert fields is not None, model
    return dict(fields)


def _walk(model: Any, prefix: tuple[str, ...]) -> Iterator[Option]:
    for name, info in _fields(model).items():
        if info.annotation in SUB_MODELS:
            yield from _walk(info.annotation, (*prefix, name))
            continue
        marker = next((m for m in info.metadata if isinstance(m, Public)), None)
        if marker is not None:
            yield Option((*prefix, name), info, marker)


OPTIONS: tuple[Option, ...] = tuple(_walk(CouncilSpec, ()))
BY_KEY: dict[str, Option] = {option.key: option for option in OPTIONS}
assert len(BY_KEY) == len(OPTIONS), "two spec fields share a public key"


def options(surface: str | None = None) -> list[Option]:
    """The spec's options in field order; those users may set on ``surface`` when given."""
    return [o for o in OPTIONS if surface is None or surface in o.public.on]


def with_options(
    values: Mapping[str, Any],
    base: CouncilSpec | None = None,
    name: Callable[[str], str] = str,
) -> CouncilSpec:
    """``base`` (the defaults unless given) with options set by key, validated; a bad value is
    a one-line ``ConfigError`` naming the option as ``name(key)`` says (its flag, its file)."""
    data: dict[str, Any] = json.loads((base or CouncilSpec()).to_json())
    for key, value in values.items():
        if key not in BY_KEY:
            raise ConfigError(f"{name(key)}: not a council option")
        *parents, field = BY_KEY[key].path
        node = data
        for parent in parents:
            node = node[parent]
        node[field] = value
    try:
        return CouncilSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, name) from None


def spec_error(exc: ValidationError, name: Callable[[str], str] = str) -> ConfigError:
    """A spec's first validation error as one line naming the option (``name(key)``)."""
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = next((o.key for o in OPTIONS if loc[: len(o.path)] == o.path), ".".join(loc))
    message = first["msg"].removeprefix("Value error, ")
    inner = ".".join(loc[len(BY_KEY[key].path) :]) if key in BY_KEY else ""
    if inner:  # one entry of a mapping: as it was given, KEY=VALUE
        return ConfigError(f"{name(key)} {inner}={first['input']}: {message}")
    return ConfigError(f"{name(key)}: {message}")


def option_values(spec: CouncilSpec, surface: str | None = None) -> dict[str, Any]:
    """Every option's value in ``spec`` by key, JSON-ready."""
    dumped = json.loads(spec.to_json())
    values = {}
    for option in options(surface):
        value: Any = dumped
        for name in option.path:
            value = value[name]
        values[option.key] = value
    return values
