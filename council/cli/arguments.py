"""Reading the command line: argument types that refuse nonsense at parse time, each with one
line (a number that is not finite, not positive or not whole, a runs folder that is a file;
argparse reports them as ``council: error: argument --timeout: ...`` and exits 2), and the
parsers of comma lists, ``NAME=VALUE`` pairs and ``--endpoint MODEL=URL``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that names each option's default where it has one and the text does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default in (None, False, True, [], argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: {default})"


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage itself is one --help away), and
    every default shown in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"council: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _number(
    kind: type, low: float | None, low_open: bool, high: float | None
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"'{text}' is not a {noun}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(
                f"{text} must be {'above' if low_open else 'at least'} {low:g}"
            )
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be at most {high:g}")
        return value

    return parse


positive_int = _number(int, 1, False, None)
non_negative_int = _number(int, 0, False, None)
positive_float = _number(float, 0, True, None)
temperature = _number(float, 0, False, 2)


def activation_cap(text: str) -> str:
    """``pN`` or a number, checked now (the seat parses it again when it is made)."""
    from council.base.errors import ConfigError
    from council.seats.activations.backend import parse_cap

    try:
        parse_cap(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def runs_folder(text: str) -> str:
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a file, not a folder for runs")
    return text


# A question on the command line is bounded by the kernel (128 KB per argument); from standard
# input or a file it may be longer, up to this, read without holding more in memory.
MAX_QUESTION_BYTES = 1 << 20


def read_question(argument: str | None, file: str | None) -> str:
    """The question: the argument, standard input for ``-``, or ``--question-file``."""
    from council.base.errors import ConfigError

    if (argument is None) == (file is None):
        raise ConfigError(
            "give the question, '-' to read it from standard input, "
            "or --question-file FILE (one of them)"
        )
    if argument is not None and argument != "-":
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("the question is not valid UTF-8 text") from None
        text, where = argument, "the question"
    else:
        where = "standard input" if file is None else file
        try:
            if file is None:
                data = sys.stdin.buffer.read(MAX_QUESTION_BYTES + 1)
            else:
                with open(file, "rb") as handle:
                    data = handle.read(MAX_QUESTION_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
        if len(data) > MAX_QUESTION_BYTES:
            raise ConfigError(f"{where}: the question is over {MAX_QUESTION_BYTES >> 20} MiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ConfigError(f"{where}: the question is empty")
    return text.strip() if argument is None or argument == "-" else text


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None or empty -> ``[]``."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def parse_pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    from council.base.errors import ConfigError

    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(f"{flag} expects NAME=VALUE, got '{value}'")
        pairs[key.strip()] = rest.strip()
    return pairs


def parse_endpoints(values: Sequence[str]) -> dict[str, str]:
    """``--endpoint MODEL=URL`` pairs, each URL an http(s) address with a host."""
    from urllib.parse import urlsplit

    from council.base.errors import ConfigError

    endpoints = parse_pairs(values, "--endpoint")
    for model, url in endpoints.items():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--endpoint {model}=...: not an http(s) URL with a host")
        if "/" not in model:
            raise ConfigError(f"--endpoint {model}=...: the model must be 'provider/model'")
    return endpoints
