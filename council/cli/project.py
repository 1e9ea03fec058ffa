"""The project files: defaults for ``convene`` that a flag overrides.

``council.toml`` sits in the working directory (or wherever ``--config`` points) and holds
top-level keys named like the flags (``model``, ``models``, ``protocol``, ``panel``,
``personas``, ``chairman``, ``out``, budgets, sampling) and an ``[endpoints]`` table.
``.council.yaml`` is nyk's project override (SKILL.md v1.2.0, "Project Overrides"; MIT,
0xNyk), read as nyk's coordinator reads it: ``profile``, ``triad``, ``members``, ``chairman``,
``models`` and ``no_auto_route``, each turned into council's setting of the same meaning.
Precedence, highest first: a flag on the command line, ``council.toml``, ``.council.yaml``,
council's default. ``reasoning_effort`` is a level for every seat
(``reasoning_effort = "low"``) or a table of seat -> level (``[reasoning_effort]`` with
``kuhn = "high"``; ``"*"`` for the rest); a flag's seats are set over the file's.
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
NYK_FILE = ".council.yaml"
DEFAULTS: dict[str, Any] = {
    "model": None, "models": None, "protocol": "council", "panel": None, "personas": None,
    "chairman": None, "out": None, "temperature": 0.7, "seed": None, "max_tokens": None,
    "timeout": 120.0, "attempts": 4, "budget_tokens": None, "budget_usd": None,
    "budget_seconds": None, "endpoints": {}, "activation_cap": None, "continue_truncated": False,
    "use_model_hints": False,
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
    use_model_hints: bool | None = None
    reasoning_effort: ReasoningEffort | dict[str, ReasoningEffort] | None = None


class NykOverrides(BaseModel):
    """nyk's ``.council.yaml``: every key optional, none other known."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = None
    triad: str | None = None
    members: str | list[str] | None = None
    chairman: str | None = None
    models: str | None = None  # a seat-mapping YAML file
    no_auto_route: bool | None = None


def _invalid(path: Path, exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    return ConfigError(f"{path}: key '{where}': {message}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        values = ProjectFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    except ValidationError as exc:
        raise _invalid(path, exc) from None
    if isinstance(values.models, list):
        values.models = ",".join(values.models)
    if values.personas is not None:
        values.personas = list(values.personas)
    if isinstance(values.reasoning_effort, str):  # one level for every seat
        values.reasoning_effort = {"*": values.reasoning_effort}
    return values.model_dump(exclude_none=True)


def _read_nyk(path: Path) -> dict[str, Any]:
    """nyk's keys as council's settings: a triad (or else a profile) is the panel, members
    the personas, ``no_auto_route`` the cards' model hints; a chairman named by provider
    alone (nyk's ``chairman: gemini``) takes that provider's high-tier model."""
    from council.sourcefile import SourceError, load_yaml, read_text, validate

    try:  # errors name the file, the line and the key
        data, node = load_yaml(*read_text(path, SourceError), SourceError)
        values = validate(NykOverrides, data or {}, node, path, SourceError)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    members = values.members
    if isinstance(members, str):
        members = [m.strip() for m in members.split(",") if m.strip()]
    found = {
        "panel": values.triad or values.profile,
        "personas": members or None,
        "chairman": values.chairman and _chairman(values.chairman, path),
        "models": values.models,
        "use_model_hints": values.no_auto_route,
    }
    return {key: value for key, value in found.items() if value is not None}


def _chairman(name: str, path: Path) -> str:
    if "/" in name:
        return name
    from council.seats.detect import tier_models

    tiers = tier_models().get(name.lower())
    if not tiers or "high" not in tiers:
        raise ConfigError(f"{path}: key 'chairman': '{name}' is neither a model (provider/model) "
                          "nor a provider council knows a high-tier model for")  # fmt: skip
    return tiers["high"]


def project_settings(path: Path | None) -> dict[str, tuple[Any, str]]:
    """Every value the project files set, with the file it came from: ``path`` alone when
    given (``.yaml``/``.yml`` read as nyk's), else ``council.toml`` over ``.council.yaml``."""
    if path is not None:
        if not path.is_file():
            return {}
        read = _read_nyk if path.suffix in (".yaml", ".yml") else _read_toml
        return {key: (value, str(path)) for key, value in read(path).items()}
    settings: dict[str, tuple[Any, str]] = {}
    for name, read in ((NYK_FILE, _read_nyk), (PROJECT_FILE, _read_toml)):
        if Path(name).is_file():
            settings |= {key: (value, name) for key, value in read(Path(name)).items()}
    return settings


def read_project(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The project files' values (unset ones left out) and the first file they came from."""
    settings = project_settings(path)
    sources = [where for _, where in settings.values()]
    return {key: value for key, (value, _) in settings.items()}, (
        Path(sources[0]) if sources else None
    )


def overrides_note(settings: dict[str, tuple[Any, str]]) -> str | None:
    """The line nyk's checkpoint states when project overrides were applied, or None."""
    applied = sorted({where for _, where in settings.values()
                      if where != "flag" and not where.startswith("default")})  # fmt: skip
    if not applied:
        return None
    keys = ", ".join(k for k, (_, where) in settings.items() if where in applied)
    return f"project overrides applied from {' and '.join(applied)}: {keys}"


def settle(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """Every convene setting as (value, where it came from): flag, project file or default."""
    project = project_settings(Path(args.config) if getattr(args, "config", None) else None)
    merged: dict[str, tuple[Any, str]] = {}
    for key, default in DEFAULTS.items():
        flag = getattr(args, key, None)
        if key in ("endpoints", "reasoning_effort") or (key == "use_model_hints" and flag is False):
            flag = None  # --endpoint and --reasoning-effort pairs merge over the file's table;
            # an unset switch is unset
        if key == "personas" and isinstance(flag, str):
            flag = [p.strip() for p in flag.split(",") if p.strip()] or flag
        if flag is not None:
            merged[key] = (flag, "flag")
        elif key in project:
            merged[key] = project[key]
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
