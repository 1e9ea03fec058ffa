"""Measuring how different personas are: embedders (loaded lazily, never downloaded), metrics
such as ``vendi_score``, run analysis, and the voices used for noise floors and drift."""

from council.diversity.embedders import (
    Embedder,
    FakeEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
    embedder_available,
)
from council.diversity.metrics import EmbeddingError, mean_pairwise_distance, vendi_score

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
