"""The project file, ``council.toml``: defaults for ``convene`` that a flag overrides.

It sits in the working directory (or wherever ``--config`` points) and holds top-level keys
named like the flags (``model``, ``models``, ``protocol``, ``panel``, ``personas``,
``chairman``, ``out``, budgets, sampling) and an ``[endpoints]`` table. ``reasoning_effort``
is a level for every seat (``reasoning_effort = "low"``) or a table of seat -> level
(``[reasoning_effort]`` with ``kuhn = "high"``; ``"*"`` for the rest); a flag's seats are
set over the file's. Precedence, highest
first: a flag on the command line, the project file, council's default.
``council config show`` prints every value and where it came from.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from council.errors import ConfigError
from council.paths import RUNS_ENV, RUNS_HOME
from council.seats.model import ReasoningEffort

PROJECT_FILE = "council.toml"
DEFAULTS: dict[str, Any] = {
    "model": None, "models": None, "protocol": "council", "panel": None, "personas": None,
    "chairman": None, "out": None, "temperature": 0.7, "seed": None, "max_tokens": None,
    "timeout": 120.0, "attempts": 4, "budget_tokens": None, "budget_usd": None,
    "budget_seconds": None, "endpoints": {}, "activation_cap": None, "continue_truncated": False,
    "reasoning_effort": {},
}  # fmt: skip


class ProjectFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    models: str | list[str] | None = None  # a list, or a seat-slot YAML file
    protocol: str | None = None
    panel: str | None = None
    personas: list[str] | None = None
    chairman: str | None = None
    out: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    attempts: int | None = Field(default=None, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    budget_seconds: float | None = Field(default=None, gt=0)
    endpoints: dict[str, str] | None = None
    activation_cap: str | None = Field(default=None, pattern=r"^(p[0-9.]+|-?[0-9.]+)$")
    continue_truncated: bool | None = None
    reasoning_effort: ReasoningEffort | dict[str, ReasoningEffort] | None = None


def read_project(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The project file's values (unset ones left out) and where it is."""
    path = path or Path(PROJECT_FILE)
    if not path.is_file():
        return {}, None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        values = ProjectFile.model_validate(data)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{path}: key '{where}': {message}") from None
    if isinstance(values.models, list):
        values.models = ",".join(values.models)
    if values.personas is not None:
        values.personas = list(values.personas)
    if isinstance(values.reasoning_effort, str):  # one level for every seat
        values.reasoning_effort = {"*": values.reasoning_effort}
    return values.model_dump(exclude_none=True), path


def settle(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """Every convene setting as (value, where it came from): flag, project file or default."""
    project, path = read_project(Path(args.config) if getattr(args, "config", None) else None)
    merged: dict[str, tuple[Any, str]] = {}
    for key, default in DEFAULTS.items():
        flag = getattr(args, key, None)
        if key in ("endpoints", "reasoning_effort"):
            flag = None  # --endpoint and --reasoning-effort pairs merge over the file's table
        if key == "personas" and isinstance(flag, str):
            flag = [p.strip() for p in flag.split(",") if p.strip()] or flag
        if flag is not None:
            merged[key] = (flag, "flag")
        elif key in project:
            merged[key] = (project[key], str(path))
        else:
            merged[key] = (default, "default")
    if merged["out"][0] is None:
        merged["out"] = (str(RUNS_HOME.path()), f"default: the runs home, ${RUNS_ENV} to move it")
    return merged


def runs_location(args: argparse.Namespace) -> Path:
    """The runs folder a command reads or writes: ``--out``, the project file's ``out``, or
    the runs home shared by every working directory."""
    if getattr(args, "out", None):
        return Path(args.out)
    project, _ = read_project(Path(args.config) if getattr(args, "config", None) else None)
    return Path(project["out"]) if project.get("out") else RUNS_HOME.path()


def show(args: argparse.Namespace) -> int:
    merged = settle(args)
    if args.json:
        print(json.dumps({k: {"value": v, "from": w} for k, (v, w) in merged.items()}, indent=2))
        return 0
    width = max(len(key) for key in merged)
    for key, (value, where) in merged.items():
        print(f"{key:<{width}}  {json.dumps(value)}  ({where})")
    return 0
