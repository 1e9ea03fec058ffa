"""Embedders beyond the local model: a content-hash cache, and litellm embedding models."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from council.meter.embedders import Embedder, Vectors
from council.meter.metrics import EmbeddingError


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache keyed by (embedder, sha256 of the text): analysing
    a run again embeds nothing twice."""

    def __init__(self, inner: Embedder, path: Path | str) -> None:
        self.inner = inner
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (embedder TEXT, text_sha256 TEXT, vector BLOB,"
            " PRIMARY KEY (embedder, text_sha256))"
        )
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        keys = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE embedder=? AND text_sha256 IN"
                f" ({','.join('?' * len(chunk))})",
                (self.name, *chunk),
            )
            for key, blob in rows:
                if len(blob) // 4 != self.dimension:
                    raise EmbeddingError(
                        f"the cache {self.path} holds {len(blob) // 4}-dimensional vectors under "
                        f"'{self.name}', which makes {self.dimension}: use another --cache"
                    )
                found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            texts_by_key = dict(zip(keys, texts, strict=True))
            vectors = self.inner.encode([texts_by_key[k] for k in missing])
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                    [
                        (self.name, k, v.astype(np.float32).tobytes())
                        for k, v in zip(missing, vectors, strict=True)
                    ],
                )
            found.update({k: v.astype(np.float32) for k, v in zip(missing, vectors, strict=True)})
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)


class LiteLLMEmbedder:
    """An embedding model through ``litellm.embedding`` (e.g. ``openai/text-embedding-3-small``);
    vectors are normalised here."""

    def __init__(self, model: str, *, batch_size: int = 128, **params: Any) -> None:
        self.model = model
        self.batch_size = batch_size
        self.params = params
        self._dimension: int | None = None

    @property
    def name(self) -> str:
        return self.model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.encode(["dimension probe"]).shape[1])
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        from council.seats.litellm_model import import_litellm

        litellm = import_litellm()
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            response = litellm.embedding(
                model=self.model, input=list(texts[start : start + self.batch_size]), **self.params
            )
            rows += [item["embedding"] for item in response.data]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._dimension = vectors.shape[1] if len(texts) else self._dimension
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embedder_from_name(name: str | None) -> Embedder:
    """``None``: the bundled all-MiniLM-L6-v2; ``fake``: the test embedder; a path or a
    sentence-transformers name; or ``litellm:<provider/model>`` for an API model."""
    from council.meter.embedders import (
        FakeEmbedder,
        SentenceTransformerEmbedder,
        default_embedder,
    )

    if name is None:
        return default_embedder()
    if name == "fake":
        return FakeEmbedder()
    if name.startswith("litellm:"):
        return LiteLLMEmbedder(name.removeprefix("litellm:"))
    return SentenceTransformerEmbedder(name)


def open_embedder(name: str | None, cache_path: Path | str) -> CachedEmbedder:
    """The embedder called ``name`` (see ``embedder_from_name``), loaded now so that a bad
    name fails here in one line, behind a content-hash cache at ``cache_path``."""
    import os

    from council.base.errors import ConfigError
    from council.base.secrets import redacted_line

    label = name or "the bundled all-MiniLM-L6-v2"
    # A sentence-transformers name is looked up on disk only: council never downloads a model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        inner = embedder_from_name(name)
        _ = inner.dimension
    except Exception as exc:
        raise ConfigError(f"embedder '{label}' cannot be used: {redacted_line(exc)}") from None
    try:
        return CachedEmbedder(inner, cache_path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"embedding cache '{cache_path}': {redacted_line(exc)}") from None
