"""What a model can do (take a JSON schema, reason), as litellm's bundled model map says.

The engine asks when it builds a request, so this reads the map's JSON itself rather than
import litellm: importing litellm in the engine's process costs seconds and keeps its calls
from the warm worker (``council.seats.warm``). council has litellm use that bundled map, never
a download (``LITELLM_LOCAL_MODEL_COST_MAP``), so both read the same file.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

MAP_FILE = "model_prices_and_context_window_backup.json"
# Providers litellm counts as taking a response schema for every model they serve.
EVERY_MODEL = {
    "supports_response_schema": frozenset(
        {"predibase", "fireworks_ai", "lm_studio", "nebius", "databricks"}
    ),
}


@lru_cache(maxsize=1)
def _model_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return {}
    try:
        data = json.loads((Path(spec.origin).parent / MAP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def supports(capability: str, model: str) -> bool:
    """Whether ``provider/name`` has ``capability`` (``supports_response_schema``,
    ``supports_reasoning``) in the map; a model the map does not know has none."""
    provider, _, name = model.partition("/")
    if provider in EVERY_MODEL.get(capability, ()):
        return True
    entries = _model_map()
    entry = entries.get(model) or entries.get(name)
    return isinstance(entry, dict) and bool(entry.get(capability))


def context_window(model: str) -> int | None:
    """The tokens ``provider/name`` reads at once (prompt and reply): a bundled model's own
    length, else the map's ``max_input_tokens``; None where neither says."""
    from council.seats.local import BUNDLED_MODELS, LOCAL_PROVIDER

    provider, _, name = model.partition("/")
    if provider == LOCAL_PROVIDER and name in BUNDLED_MODELS:
        return BUNDLED_MODELS[name].context_tokens
    entries = _model_map()
    entry = entries.get(model) or entries.get(name)
    found = entry.get("max_input_tokens") if isinstance(entry, dict) else None
    return found if isinstance(found, int) and found > 0 else None
