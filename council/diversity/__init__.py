"""Measuring how different personas are: embedders (loaded lazily, never downloaded), metrics
such as ``vendi_score``, run analysis, and the no-persona baseline (``baseline.py``).

Names resolve on first use: a run asks ``embedders`` whether an embedder is installed, and
that question must not import numpy (the metrics) on the way to the first model call.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Embedder": "council.diversity.embedders",
    "FakeEmbedder": "council.diversity.embedders",
    "SentenceTransformerEmbedder": "council.diversity.embedders",
    "default_embedder": "council.diversity.embedders",
    "embedder_available": "council.diversity.embedders",
    "EmbeddingError": "council.diversity.metrics",
    "mean_pairwise_distance": "council.diversity.metrics",
    "vendi_score": "council.diversity.metrics",
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
    from council.diversity.embedders import (
        Embedder,
        FakeEmbedder,
        SentenceTransformerEmbedder,
        default_embedder,
        embedder_available,
    )
    from council.diversity.metrics import EmbeddingError, mean_pairwise_distance, vendi_score


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'council.diversity' has no attribute {name!r}")
