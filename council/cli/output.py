"""Printing listings for people (aligned columns) or for tools (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def print_rows(rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(list(rows), indent=2, ensure_ascii=False))
        return
    widths = [max((len(str(row[c])) for row in rows), default=0) for c in columns[:-1]]
    for row in rows:
        cells = [f"{row[c]!s:<{w}}" for c, w in zip(columns[:-1], widths, strict=True)]
        print("  ".join([*cells, str(row[columns[-1]])]))
