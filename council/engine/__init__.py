"""The engine: runs a protocol's stage graph with a seating and reports to observers."""

from council.engine.deliberation import Deliberation, SamplingSettings
from council.engine.observer import Observer, Observers

__all__ = ["Deliberation", "Observer", "Observers", "SamplingSettings"]
