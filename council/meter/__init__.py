"""Measuring how different personas are: embedders (loaded lazily, never downloaded), metrics
such as ``vendi_score``, run analysis, and the no-persona baseline (``baseline.py``).

Names resolve on first use: a run asks ``embedders`` whether an embedder is installed, and
that question must not import numpy (the metrics) on the way to the first model call.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Embedder": "council.meter.embedders",
    "FakeEmbedder": "council.meter.embedders",
    "SentenceTransformerEmbedder": "council.meter.embedders",
    "default_embedder": "council.meter.embedders",
    "embedder_available": "council.meter.embedders",
    "EmbeddingError": "council.meter.metrics",
    "mean_pairwise_distance": "council.meter.metrics",
    "vendi_score": "council.meter.metrics",
}

__all__ = [
    "Embedder",
    "EmbeddingError",
    "FakeEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "embedder_available",
    "mean_pairwise_distance",
    "vendi_score",
]

if TYPE_CHECKING:
    from council.meter.embedders import (
        Embedder,
        FakeEmbedder,
        SentenceTransformerEmbedder,
        default_embedder,
        embedder_available,
    )
    from council.meter.metrics import EmbeddingError, mean_pairwise_distance, vendi_score


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council.meter' has no attribute {name!r}")
