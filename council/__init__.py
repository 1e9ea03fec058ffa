"""council: several personas, seated on one or many model providers, deliberate on a question.

Heavy modules (litellm, torch, llama_cpp) are imported only when a call needs them; the names
below are resolved lazily so ``import council`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from council.distribution import __version__, warn_if_shadowed

warn_if_shadowed(__version__)

_EXPORTS = {
    "Council": "council.app.council",
    "DEFAULT_PANEL": "council.app.council",
    "CouncilError": "council.errors",
    "RunResult": "council.records.run",
    "Turn": "council.records.run",
    "SamplingSettings": "council.records.settings",
    "CallSettings": "council.records.settings",
    "Budget": "council.records.settings",
    "load_run": "council.store.loader",
    "resume": "council.app.resume",
    "replay": "council.app.resume",
}

__all__ = [
    "DEFAULT_PANEL",
    "Budget",
    "CallSettings",
    "Council",
    "CouncilError",
    "RunResult",
    "SamplingSettings",
    "Turn",
    "__version__",
    "load_run",
    "replay",
    "resume",
]

if TYPE_CHECKING:
    from council.app.council import DEFAULT_PANEL, Council
    from council.app.resume import replay, resume
    from council.errors import CouncilError
    from council.records.run import RunResult, Turn
    from council.records.settings import Budget, CallSettings, SamplingSettings
    from council.store.loader import load_run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council' has no attribute {name!r}")
