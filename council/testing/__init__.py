"""Public test doubles: seat models that need no model, a fault-injecting provider on
loopback, and a network guard. Names load lazily, so ``python -m
council.testing.fake_provider`` runs without importing itself twice."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "FunctionModel": "council.testing.doubles",
    "ScriptedModel": "council.testing.doubles",
    "well_formed_reply": "council.testing.doubles",
    "well_formed_verdict": "council.testing.doubles",
    "FakeProvider": "council.testing.fake_provider",
    "FakeReply": "council.testing.fake_wire",
    "NetworkBlocked": "council.testing.network_guard",
    "loopback_only": "council.testing.network_guard",
}

__all__ = [
    "FakeProvider",
    "FakeReply",
    "FunctionModel",
    "NetworkBlocked",
    "ScriptedModel",
    "loopback_only",
    "well_formed_reply",
    "well_formed_verdict",
]

if TYPE_CHECKING:
    from council.testing.doubles import (
        FunctionModel,
        ScriptedModel,
        well_formed_reply,
        well_formed_verdict,
    )
    from council.testing.fake_provider import FakeProvider
    from council.testing.fake_wire import FakeReply
    from council.testing.network_guard import NetworkBlocked, loopback_only


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council.testing' has no attribute {name!r}")
