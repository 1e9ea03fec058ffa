"""Seats: a persona bound to a model, and the models behind them (litellm, bundled local)."""

from council.seats.model import (
    CallListener,
    ChatModel,
    Completion,
    ModelRequest,
    split_model_string,
)
from council.seats.seat import CallSettings, Seat, make_model

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
