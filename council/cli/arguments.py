"""Argument types that refuse nonsense at parse time, each with one line: a number that is not
finite, not positive or not whole, a runs folder that is a file. argparse reports them as
``council: error: argument --timeout: ...`` and exits 2."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage itself is one --help away)."""

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


def runs_folder(text: str) -> str:
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a file, not a folder for runs")
    return text
