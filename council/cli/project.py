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

The keys of ``council.toml`` are the options of ``CouncilSpec`` (``council.records.spec``)
that the command line sets, named as its flags are, plus ``out``: the file is read into the
spec, so a key and its flag cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from council.base.errors import ConfigError
from council.base.runs_home import RUNS_ENV, RUNS_HOME
from council.records.options import BY_KEY, option_values, options, with_options
from council.records.spec import CLI, CouncilSpec

PROJECT_FILE = "council.toml"
NYK_FILE = ".council.yaml"
OUT = "out"  # the one key of the project file that is the command line's, not the council's
SLOT_FILES = (".yaml", ".yml")  # a 'models' value naming one is a seat-slot file


class NykOverrides(BaseModel):
    """nyk's ``.council.yaml``: every key optional, none other known."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = None
    triad: str | None = None
    members: str | list[str] | None = None
    chairman: str | None = None
    models: str | None = None  # a seat-mapping YAML file
    no_auto_route: bool | None = None


def slots_in_models(values: dict[str, Any]) -> dict[str, Any]:
    """``models`` naming a YAML file (``--models slots.yaml``, nyk's ``models:``) means that
    seat-slot file, not a pool of one model."""
    models = values.get("models")
    if isinstance(models, list) and len(models) == 1:
        models = models[0]
    if isinstance(models, str) and models.strip().lower().endswith(SLOT_FILES):
        values = {k: v for k, v in values.items() if k != "models"}
        values["seat_slots"] = models.strip()
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    keys = {option.key for option in options(CLI)} | {OUT}
    for key in data:
        if key not in keys:
            raise ConfigError(f"{path}: key '{key}': unknown key")
    out = data.pop(OUT, None)
    if out is not None and not isinstance(out, str):
        raise ConfigError(f"{path}: key '{OUT}': a folder name, in quotes")
    data = slots_in_models(data)
    shown = option_values(with_options(data, name=lambda key: f"{path}: key '{key}'"))
    return {key: shown[key] for key in data} | ({OUT: out} if out else {})


def _read_nyk(path: Path) -> dict[str, Any]:
    """nyk's keys as council's settings: a triad (or else a profile) is the panel, members
    the personas, ``no_auto_route`` the cards' model hints, ``models`` a seat-slot file; a
    chairman named by provider alone (nyk's ``chairman: gemini``) takes that provider's
    high-tier model."""
    from council.text.sourcefile import SourceError, load_yaml, read_text, validate

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
        "seat_slots": values.models,
        "use_model_hints": values.no_auto_route,
    }
    return {key: value for key, value in found.items() if value is not None}


def _chairman(name: str, path: Path) -> str:
    if "/" in name:
        return name
    from council.seats.detect import tier_models

    tiers = tier_models().get(name.lower())
    if not tiers or "high" not in tiers:
        raise ConfigError(
            f"{path}: key 'chairman': '{name}' is neither a model (provider/model) "
            "nor a provider council knows a high-tier model for"
        )
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


@dataclass(frozen=True)
class Settled:
    """A convene's spec, from flags over project files over the spec's defaults, and where
    each option's value came from; ``out`` is the runs folder."""

    spec: CouncilSpec
    where: dict[str, str]  # option key -> "flag", a file, or "default"
    out: tuple[str, str]  # (folder, where)

    def rows(self) -> dict[str, tuple[Any, str]]:
        """Every option (and ``out``) as (value, where), in the spec's order."""
        values = option_values(self.spec, CLI)
        return {key: (value, self.where[key]) for key, value in values.items()} | {OUT: self.out}


def settle(args: argparse.Namespace) -> Settled:
    """Every convene setting: a flag, else the project files, else the spec's default."""
    from council.cli.spec_flags import spec_flags

    project = project_settings(Path(args.config) if getattr(args, "config", None) else None)
    flags = slots_in_models(spec_flags(args))
    given: dict[str, Any] = {}
    where: dict[str, str] = {}
    for option in options(CLI):
        key = option.key
        if key in flags:  # flag pairs (--endpoint, --seat...) go over the file's table
            filed = project.get(key, ({}, ""))[0] if option.shape == "mapping" else {}
            given[key], where[key] = (filed | flags[key] if filed else flags[key]), "flag"
        elif key in project:
            given[key], where[key] = project[key]
        else:
            where[key] = "default"
    spec = with_options(given, name=lambda key: BY_KEY[key].flag if key in flags else key)
    out = project.get(OUT, (None, ""))
    if getattr(args, OUT, None):
        out = (args.out, "flag")
    if out[0] is None:
        out = (str(RUNS_HOME.path()), f"default: the runs home, ${RUNS_ENV} to move it")
    return Settled(spec, where, out)


def overrides_note(settings: dict[str, tuple[Any, str]]) -> str | None:
    """The line nyk's checkpoint states when project overrides were applied, or None."""
    applied = sorted(
        {
            where
            for _, where in settings.values()
            if where != "flag" and not where.startswith("default")
        }
    )
    if not applied:
        return None
    keys = ", ".join(k for k, (_, where) in settings.items() if where in applied)
    return f"project overrides applied from {' and '.join(applied)}: {keys}"


def runs_folder_of(args: argparse.Namespace) -> Path:
    """The runs folder a command reads or writes: ``--out``, the project file's ``out``, or
    the runs home shared by every working directory."""
    if getattr(args, "out", None):
        return Path(args.out)
    project, _ = read_project(Path(args.config) if getattr(args, "config", None) else None)
    return Path(project["out"]) if project.get("out") else RUNS_HOME.path()


def show(args: argparse.Namespace) -> int:
    rows = settle(args).rows()
    if args.json:
        print(json.dumps({k: {"value": v, "from": w} for k, (v, w) in rows.items()}, indent=2))
        return 0
    width = max(len(key) for key in rows)
    for key, (value, where) in rows.items():
        print(f"{key:<{width}}  {json.dumps(value)}  ({where})")
    return 0
