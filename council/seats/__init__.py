"""Seats: a persona bound to a model, and the models behind them (litellm, bundled local).

Names resolve on first use, so a submodule (``council.seats.local``'s default model name, asked
for by ``council --help``) loads without the seat machinery: personas, pydantic, Jinja.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CallListener": "council.seats.model",
    "ChatModel": "council.seats.model",
    "Completion": "council.seats.model",
    "ModelRequest": "council.seats.model",
    "split_model_string": "council.seats.model",
    "CallSettings": "council.seats.seat",
    "Seat": "council.seats.seat",
    "make_model": "council.seats.seat",
}

__all__ = [
    "CallListener",
    "CallSettings",
    "ChatModel",
    "Completion",
    "ModelRequest",
    "Seat",
    "make_model",
    "split_model_string",
]

if TYPE_CHECKING:
    from council.seats.model import (
        CallListener,
        ChatModel,
        Completion,
        ModelRequest,
        split_model_string,
    )
    from council.seats.seat import CallSettings, Seat, make_model


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council.seats' has no attribute {name!r}")
