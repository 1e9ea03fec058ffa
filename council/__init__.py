"""council: several personas, seated on one or many model providers, deliberate on a question.

Heavy modules (litellm, torch, llama_cpp) are imported only when a call needs them; the names
below are resolved lazily so ``import council`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from council.base.distribution import __version__, warn_if_shadowed

warn_if_shadowed(__version__)

_EXPORTS = {
    "Council": "council.app.council",
    "DEFAULT_PANEL": "council.app.council",
    "CouncilError": "council.base.errors",
    "Persona": "council.personas.card",
    "PersonaCard": "council.personas.card",
    "RunResult": "council.records.run",
    "Turn": "council.records.run",
    "SamplingSettings": "council.records.settings",
    "CallSettings": "council.records.settings",
    "Budget": "council.records.settings",
    "load_run": "council.store.loader",
    "find_runs": "council.store.loader",
    "RunQuery": "council.store.query",
    "SeatChanges": "council.app.resume",
    "resume": "council.app.resume",
    "replay": "council.app.resume",
    "follow_up": "council.app.follow_up",
    "measure": "council.app.measure",
    "audit_run": "council.app.audit",
    "Experiment": "council.app.experiments.experiment",
    "Arm": "council.app.experiments.runner",
    "Eval": "council.app.evaluation",
}

__all__ = [
    "DEFAULT_PANEL",
    "Arm",
    "Budget",
    "CallSettings",
    "Council",
    "CouncilError",
    "Eval",
    "Experiment",
    "Persona",
    "PersonaCard",
    "RunQuery",
    "RunResult",
    "SamplingSettings",
    "SeatChanges",
    "Turn",
    "__version__",
    "audit_run",
    "find_runs",
    "follow_up",
    "load_run",
    "measure",
    "replay",
    "resume",
]

if TYPE_CHECKING:
    from council.app.audit import audit_run
    from council.app.council import DEFAULT_PANEL, Council
    from council.app.evaluation import Eval
    from council.app.experiments.experiment import Experiment
    from council.app.experiments.runner import Arm
    from council.app.follow_up import follow_up
    from council.app.measure import measure
    from council.app.resume import SeatChanges, replay, resume
    from council.base.errors import CouncilError
    from council.personas.card import Persona, PersonaCard
    from council.records.run import RunResult, Turn
    from council.records.settings import Budget, CallSettings, SamplingSettings
    from council.store.loader import find_runs, load_run
    from council.store.query import RunQuery


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import_module("council.app")  # registers result.follow_up(), whichever name is read
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council' has no attribute {name!r}")
