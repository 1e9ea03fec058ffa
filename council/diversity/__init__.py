"""Measuring how different personas are: text embedders (loaded lazily, never downloaded)."""

from council.diversity.embedders import (
    Embedder,
    FakeEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
    embedder_available,
)

__all__ = [
    "Embedder",
    "FakeEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "embedder_available",
]
