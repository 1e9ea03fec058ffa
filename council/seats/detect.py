"""What can seat a council here: provider keys in the environment, model servers on loopback,
and each provider's model for a tier (``routing/defaults.yaml``).

``--model auto`` seats the council across everything found (polarity pairs on different
families, the chair on a family none of them is on) and prints the seat map; with nothing
found it is the bundled model. Detection reads variable names and asks 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from council.base.errors import ConfigError, SourceError
from council.base.library_paths import search_path
from council.text.sourcefile import load_yaml, read_text, validate

KEY_VARIABLES = {
    "OPENAI_API_KEY": "openai", "ANTHROPIC_API_KEY": "anthropic", "GEMINI_API_KEY": "gemini",
    "MISTRAL_API_KEY": "mistral", "XAI_API_KEY": "xai", "DEEPSEEK_API_KEY": "deepseek",
}  # fmt: skip
# Variables litellm also takes for a provider's key, besides the one above.
_ALSO_KEYS = {"gemini": ("GOOGLE_API_KEY",)}
# Local servers council knows how to ask for their models: (name, port, models path).
LOOPBACK_SERVERS = (("ollama", 11434, "/api/tags"), ("llama.cpp", 8080, "/v1/models"))
Tier = str  # "high", "mid" or "low"


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_models: dict[str, dict[Tier, str]]


def tier_models() -> dict[str, dict[Tier, str]]:
    """provider -> tier -> model, from the first ``routing/defaults.yaml`` on the search path."""
    for folder in search_path("routing", "COUNCIL_ROUTING_PATH"):
        path = Path(folder) / "defaults.yaml"
        if path.is_file():
            data, node = load_yaml(*read_text(path, SourceError), SourceError)
            return validate(_Defaults, data, node, path, SourceError).provider_models
    return {}


@dataclass
class Found:
    models: list[str] = field(default_factory=list)  # a pool, one model per provider
    endpoints: dict[str, str] = field(default_factory=dict)
    how: list[str] = field(default_factory=list)  # what was found, and where


def _local_models(name: str, port: int, path: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=0.3) as reply:
            data = json.loads(reply.read(1_000_000))
    except (OSError, ValueError):
        return []
    if name == "ollama":
        return [m["name"] for m in data.get("models", []) if isinstance(m, dict) and "name" in m]
    return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]


def detect(
    env: Mapping[str, str] | None = None,
    servers: tuple[tuple[str, int, str], ...] | None = None,
) -> Found:
    env = os.environ if env is None else env
    servers = LOOPBACK_SERVERS if servers is None else servers
    found = Found()
    tiers = tier_models()
    for variable, provider in KEY_VARIABLES.items():
        model = tiers.get(provider, {}).get("mid")
        if env.get(variable) and model:
            found.models.append(model)
            found.how.append(f"{provider} ({variable} is set): {model}")
    for name, port, path in servers:
        local = _local_models(name, port, path)
        if not local:
            continue
        if name == "ollama":
            model = f"ollama_chat/{local[0]}"
        else:
            model = f"openai/{local[0]}"
            found.endpoints[model] = f"http://127.0.0.1:{port}/v1"
        found.models.append(model)
        found.how.append(f"{name} on 127.0.0.1:{port}: {model}")
    return found


def missing_keys(model: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The key variables a hosted ``model`` needs that are not set (empty: none missing):
    what ``council models`` and the pre-flight both say. A provider in ``KEY_VARIABLES`` is
    read from ``env`` without importing litellm; any other is asked of litellm
    (``validate_environment``, which reads this process's environment). A missing base URL
    is no key: those providers have a default (Ollama's own port)."""
    env = os.environ if env is None else env
    provider = model.partition("/")[0]
    own = next((v for v, p in KEY_VARIABLES.items() if p == provider), None)
    if own is not None:
        choices = (own, *_ALSO_KEYS.get(provider, ()))
        return [] if any(env.get(name) for name in choices) else [own]
    from council.seats.litellm_import import import_litellm

    found = import_litellm().validate_environment(model=model)
    missing = [k for k in found.get("missing_keys", []) if not k.endswith("_API_BASE")]
    return [] if found.get("keys_in_environment") else missing


@dataclass(frozen=True)
class ModelEntry:
    """One model that could take a seat here, where it comes from, and whether it can now."""

    model: str
    source: str  # "bundled", "openai (tier high)", "ollama on 127.0.0.1:11434", ...
    ready: bool
    note: str = ""  # what to do when it is not ready

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "source": self.source, "ready": self.ready, "note": self.note}


def _bundled_entries() -> list[ModelEntry]:
    from council.seats.local import BUNDLED_MODELS

    entries = []
    for bundled in BUNDLED_MODELS.values():
        try:
            ready = all(path.is_file() for path in bundled.part_paths())
            note = "" if ready else f"files missing: reinstall {bundled.pip_spec}"
        except ConfigError as exc:  # the package is not installed
            ready, note = False, str(exc).split(": ", 1)[-1]
        entries.append(ModelEntry(bundled.model_string, "bundled, runs offline", ready, note))
    return entries


def _command_entries(which: Callable[[str], str | None]) -> list[ModelEntry]:
    """The subscription CLIs on PATH, each a command seat on its own login (no key read)."""
    from council.seats.commands import PRESETS

    entries = []
    for name, spec in PRESETS.items():
        found = which(spec.argv[0])
        if found:
            model = f"cli/{name}:MODEL" if spec.needs_model else f"cli/{name}"
            note = "name one of its models in place of MODEL" if spec.needs_model else ""
            source = f"{spec.argv[0]} CLI at {found}"
            entries.append(ModelEntry(model, source, not spec.needs_model, note))
    return entries


def model_catalogue(
    env: Mapping[str, str] | None = None,
    servers: tuple[tuple[str, int, str], ...] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[ModelEntry]:
    """Every model council can seat here without asking a paid provider anything: the bundled
    models, each provider's tier models (ready when its key variable is set; the key itself is
    never read out), the models served on loopback and the subscription CLIs on PATH."""
    env = os.environ if env is None else env
    servers = LOOPBACK_SERVERS if servers is None else servers
    entries = _bundled_entries()
    for provider, tiers in tier_models().items():
        for model in dict.fromkeys(tiers.values()):
            missing = missing_keys(model, env)
            ready, note = not missing, f"set {' and '.join(missing)}" if missing else ""
            strengths = "/".join(tier for tier, m in tiers.items() if m == model)
            entries.append(ModelEntry(model, f"{provider} ({strengths})", ready, note))
    for name, port, path in servers:
        served = _local_models(name, port, path)
        for model in served:
            string = f"ollama_chat/{model}" if name == "ollama" else f"openai/{model}"
            entries.append(ModelEntry(string, f"{name} on 127.0.0.1:{port}", True))
        if not served:
            entries.append(
                ModelEntry(
                    f"{name}/*", f"{name} on 127.0.0.1:{port}", False, "nothing answering there"
                )
            )
    return entries + _command_entries(which)
