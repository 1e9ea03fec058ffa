"""The bundled all-MiniLM-L6-v2 in numpy: the same vectors as sentence-transformers (to about
1e-7), without importing torch, transformers and scikit-learn.

Choosing a panel, a duo or the domain seat embeds a question and a dozen short phrases before
the first model request of a run. Through sentence-transformers that costs seconds of imports;
here it costs numpy, the tokenizers library and a memory map of the weights. Only the layout
the bundled model has is read (a BERT encoder, mean pooling, normalisation: ``modules.json``);
for any other the caller uses ``SentenceTransformerEmbedder``.

Each text is encoded on its own (no padding), with the model's own tokenizer
(``tokenizer.json``) and truncation (``max_seq_length``), and GELU's erf by Abramowitz and
Stegun 7.1.26 (error under 1.5e-7, float32's own precision).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

from council.meter.embedders import DEFAULT_MODEL_NAME, Vectors, _bundled_model_path

# The one layout read here: what sentence-transformers' all-MiniLM-L6-v2 folder declares.
_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def _readable(folder: Path) -> bool:
    """Whether ``folder`` holds a model in the one layout read here."""
    try:
        modules = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
        config = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        value
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )
    return (
        modules == _MODULES
        and bool(mean_only)
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (folder / "tokenizer.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


def _weights(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file, memory-mapped: only the pages used are read."""
    import numpy as np

    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = data[start:end].view(_DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = array.astype(np.float32) if info["dtype"] == "F16" else array
    return tensors


def _erf(x: Any) -> Any:
    import numpy as np

    sign, a = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = (
        (((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: Any, weight: Any, bias: Any, eps: float) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / (var + eps) ** 0.5 * weight + bias


def _one_thread() -> AbstractContextManager[Any]:
    """BLAS on one thread: matrices this small gain nothing from more, and on a busy machine
    its spinning threads cost ten times the work."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class LightMiniLM:
    """A sentence-transformers BERT model (mean pooling, normalised) run in numpy."""

    def __init__(self, folder: Path, name: str | None = None) -> None:
        from tokenizers import Tokenizer

        self.folder = folder
        self._name = name or folder.name
        self.config = json.loads((folder / "config.json").read_text())
        limits = json.loads((folder / "sentence_bert_config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(limits.get("max_seq_length", 512)))
        self.w = _weights(folder / "model.safetensors")

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self.config["hidden_size"])

    def encode(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with _one_thread():
            for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
                vectors[row] = self._sentence(encoding.ids, encoding.type_ids)
        return vectors

    def _sentence(self, ids: list[int], types: list[int]) -> Any:
        import numpy as np

        w, eps = self.w, float(self.config.get("layer_norm_eps", 1e-12))
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for layer in range(int(self.config["num_hidden_layers"])):
            x = self._layer(x, f"encoder.layer.{layer}.", eps)
        pooled = x.mean(0)  # every token is real: nothing was padded
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def _layer(self, x: Any, prefix: str, eps: float) -> Any:
        import numpy as np

        w = self.w

        def dense(h: Any, name: str) -> Any:
            return h @ w[f"{prefix}{name}.weight"].T + w[f"{prefix}{name}.bias"]

        heads = int(self.config["num_attention_heads"])
        tokens, width = x.shape
        split = (tokens, heads, width // heads)
        q, k, v = (
            dense(x, f"attention.self.{n}").reshape(split).transpose(1, 0, 2)
            for n in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) * (1.0 / math.sqrt(width // heads))
        scores = scores - scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        attended = (weights @ v).transpose(1, 0, 2).reshape(tokens, width)
        x = _layer_norm(
            dense(attended, "attention.output.dense") + x,
            w[f"{prefix}attention.output.LayerNorm.weight"],
            w[f"{prefix}attention.output.LayerNorm.bias"],
            eps,
        )
        inner = dense(x, "intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner * (1.0 / math.sqrt(2.0))))
        return _layer_norm(
            dense(inner, "output.dense") + x,
            w[f"{prefix}output.LayerNorm.weight"],
            w[f"{prefix}output.LayerNorm.bias"],
            eps,
        )


@cache
def light_default_embedder() -> LightMiniLM | None:
    """The bundled all-MiniLM-L6-v2 in numpy (one per process); None where the bundled model,
    numpy or tokenizers is missing, or the folder is not in the layout read here."""
    path = _bundled_model_path()
    if path is None or not _readable(path):
        return None
    try:
        return LightMiniLM(path, name=DEFAULT_MODEL_NAME)
    except ImportError:
        return None
