"""council: several personas, seated on one or many model providers, deliberate on a question.

Heavy modules (litellm, torch, llama_cpp) are imported only when a call needs them; the names
below are resolved lazily so ``import council`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Council": "council.council",
    "DEFAULT_PANEL": "council.council",
    "CouncilError": "council.errors",
    "RunResult": "council.transcript.records",
    "Turn": "council.transcript.records",
    "SamplingSettings": "council.engine.deliberation",
    "CallSettings": "council.seats.seat",
}

__all__ = [
    "DEFAULT_PANEL",
    "CallSettings",
    "Council",
    "CouncilError",
    "RunResult",
    "SamplingSettings",
    "Turn",
    "__version__",
]

if TYPE_CHECKING:
    from council.council import DEFAULT_PANEL, Council
    from council.engine.deliberation import SamplingSettings
    from council.errors import CouncilError
    from council.seats.seat import CallSettings
    from council.transcript.records import RunResult, Turn


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council' has no attribute {name!r}")
