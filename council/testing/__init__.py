"""Public test doubles: seat models that need no model, a fake provider, a network guard."""

from council.testing.doubles import FunctionModel, ScriptedModel, well_formed_reply
from council.testing.fake_provider import FakeProvider
from council.testing.network_guard import NetworkBlocked, loopback_only

__all__ = [
    "FakeProvider",
    "FunctionModel",
    "NetworkBlocked",
    "ScriptedModel",
    "loopback_only",
    "well_formed_reply",
]
