"""The retriever a run's context documents are ranked with (``council.engine.grounding``):
the bundled sentence-transformers embedder, given to the engine here because the engine
imports no meter; word overlap where the council compares by words or no embedder is
installed. Chunk vectors are kept by content hash for the process, so a document convened on
again (a web or MCP server, an experiment) is embedded once."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from council.engine.grounding import Grounding, Retriever, WordRetriever
from council.meter.embedders import Embedder
from council.text.documents import ContextDocument

Encode = Callable[[list[str]], Any]  # texts -> unit row vectors
_KEPT: dict[tuple[str, str], Any] = {}  # (embedder, sha256 of the chunk) -> its vector
_LOCK = threading.Lock()


class EmbeddingRetriever:
    """Cosine of each text to the query, by an embedder's unit vectors."""

    def __init__(self, encode: Callable[[], Encode | None], name: str) -> None:
        self._load, self.name = encode, name
        self._encode: Encode | None = None
        self.embedded = 0  # chunks this retriever embedded (not found kept)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        import numpy as np

        if self._encode is None:
            self._encode = self._load()
        if self._encode is None:  # the embedder would not load: words still rank
            return WordRetriever().scores(query, texts)
        keys = [(self.name, hashlib.sha256(t.encode("utf-8")).hexdigest()) for t in texts]
        with _LOCK:
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in _KEPT}
            if missing:
                vectors = self._encode(list(missing.values()))
                _KEPT.update(zip(missing, vectors, strict=True))
                self.embedded += len(missing)
            matrix = np.stack([_KEPT[k] for k in keys])
        wanted = self._encode([query])[0]
        return [float(v) for v in matrix @ wanted]


def retriever_for(similarity: str, embedder: Embedder | None) -> Retriever:
    """The embedder given, else the bundled one where the council compares by embedding."""
    if embedder is not None:
        return EmbeddingRetriever(lambda: embedder.encode, embedder.name)
    if similarity != "embedding":
        return WordRetriever()
    from council.app.choosing import bundled_encoder

    return EmbeddingRetriever(bundled_encoder, "bundled")


def grounding_for(
    documents: Sequence[ContextDocument],
    similarity: str,
    embedder: Embedder | None,
    tools: str = "auto",
) -> Grounding | None:
    """A run's documents with their retriever and who may call the context tools (auto, on,
    off); None without documents."""
    if not documents:
        return None
    return Grounding(documents, retriever_for(similarity, embedder), tools=tools)
