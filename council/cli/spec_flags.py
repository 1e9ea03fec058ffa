"""The command line's council options, generated from ``CouncilSpec``: one flag per option the
spec marks for the command line, its help the field's description and its default the
field's, and back from the parsed flags to option values.

A switch (a bool) is ``--name/--no-name``; a mapping is a repeatable ``--flag KEY=VALUE`` (a
list value comma-separated); a list is one comma-separated value; anything else is checked
against the field's type and bounds as it is parsed, so a bad number is argparse's one line.
"""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Callable, Collection
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from council.cli.arguments import activation_cap, parse_endpoints, parse_pairs, split_list
from council.records.options import BY_KEY, Option, options
from council.records.spec import CLI

# Options whose flag parses its text in its own way (one message where the spec's is vaguer).
TYPES: dict[str, Callable[[str], Any]] = {"activation_cap": activation_cap}
METAVARS: dict[Any, str] = {int: "N", float: "X", str: "TEXT"}


def _value_type(option: Option) -> Callable[[str], Any]:
    """Text -> the field's value, within its bounds, or argparse's one-line error."""
    kind: Any = Annotated[(option.annotation, *option.info.metadata)]
    adapter: TypeAdapter[Any] = TypeAdapter(
        kind,
        config=ConfigDict(allow_inf_nan=False),
    )

    def parse(text: str) -> Any:
        try:
            value = adapter.validate_python(text)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise argparse.ArgumentTypeError(
                f"'{text}': {message[0].lower()}{message[1:]}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        return value

    return parse


def add_spec_flags(
    parser: argparse.ArgumentParser, keys: Collection[str] | None = None, *, recorded: bool = False
) -> None:
    """A flag for each command-line option (those in ``keys`` when given); ``recorded`` says
    an option left unset keeps what a recorded run had (replay), not the spec's default."""
    for option in options(CLI):
        if keys is not None and option.key not in keys:
            continue
        words = "as recorded" if recorded else option.default_words()
        text = option.description + ("; repeatable" if option.shape == "mapping" else "")
        kwargs: dict[str, Any] = {
            "dest": option.key,
            "default": None,
            "metavar": option.public.metavar,
            "help": f"{text} (default: {words})" if words else text,
        }
        if option.shape == "flag":
            kwargs |= {"action": argparse.BooleanOptionalAction, "metavar": None}
        elif option.shape == "mapping":
            kwargs |= {"action": "append", "metavar": option.public.metavar or "KEY=VALUE"}
        elif option.public.many:  # --context a.md b.md, or given again
            kwargs |= {"action": "extend", "nargs": "+"}
        elif typing.get_origin(option.annotation) is typing.Literal:
            kwargs["choices"] = typing.get_args(option.annotation)
        elif option.shape == "value":
            kwargs["type"] = TYPES.get(option.key) or _value_type(option)
            kwargs["metavar"] = option.public.metavar or METAVARS.get(option.annotation)
        parser.add_argument(option.flag, **kwargs)


def _mapping(option: Option, values: list[str]) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` flags as a mapping; a bare VALUE is ``option.public.bare``'s."""
    bare = option.public.bare
    if bare is not None:
        values = [v if "=" in v else f"{bare}={v}" for v in values]
    if option.key == "endpoints":  # every URL an http(s) address with a host
        return parse_endpoints(values)
    pairs = parse_pairs(values, option.flag)
    value_type = typing.get_args(option.annotation)[1]
    if typing.get_origin(value_type) is list:
        return {key: split_list(value) for key, value in pairs.items()}
    return dict(pairs)


def spec_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, by key (those not given left out)."""
    given: dict[str, Any] = {}
    for key, option in BY_KEY.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        given[key] = _mapping(option, value) if option.shape == "mapping" else value
    return given
