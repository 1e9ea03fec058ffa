"""``council models``: what can take a seat here (bundled models, providers whose keys are set,
servers on loopback, the project file's models), asking no paid model anything."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _models(args: argparse.Namespace) -> int:
    from council.cli.arguments import split_list
    from council.cli.project import read_project
    from council.seats.detect import ModelEntry, model_catalogue

    entries = model_catalogue()
    project, path = read_project(None)
    configured = [project.get("model"), project.get("chairman"), *project.get("endpoints", {})]
    models = project.get("models")
    if models and not str(models).lower().endswith((".yaml", ".yml")):
        configured += split_list(models)
    known = {entry.model for entry in entries}
    for model in dict.fromkeys(m for m in configured if m):
        if model not in known:
            entries.append(ModelEntry(model, f"project file {path}", True, "not checked"))
    if args.ready:
        entries = [entry for entry in entries if entry.ready]
    if args.json:
        print(json.dumps([entry.to_json() for entry in entries], indent=2))
        return 0
    width = max((len(entry.model) for entry in entries), default=0)
    for entry in entries:
        state = "ready" if entry.ready else "-"
        note = f"  ({entry.note})" if entry.note else ""
        print(f"{entry.model:<{width}}  {state:<5}  {entry.source}{note}")
    return 0


def register(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="models that can take a seat here: bundled, keys set, servers on loopback",
        description="Lists the bundled models, each provider's tier models (ready when its key "
        "variable is set; keys are never shown), models served on loopback (Ollama, llama.cpp) "
        "and the project file's models. Calls no paid model.",
    )
    models.add_argument("--ready", action="store_true", help="only models that can run now")
    models.add_argument("--json", action="store_true", help="JSON on stdout")
    models.set_defaults(handler=_models)
