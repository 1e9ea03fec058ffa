"""The diversity meter in the loop: the engine's guards measure through a ``DiversityProbe``
(``council.engine.guards``), and this is the one the application gives them, built on an
embedder (the bundled all-MiniLM-L6-v2 unless told otherwise).

Diversity is the meter's mean pairwise cosine distance, tested against the no-persona
baseline by ``council.meter.baseline``; drift is the meter's drift position, from the
seat's card (what it is, how it reasons, what it asks) to its model's no-persona answers. A
seat whose turn recorded activations on the assistant axis its model carries is placed by those
instead: the position inside the model, on the same 0-to-1 scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from council.meter.embedders import Embedder, default_embedder, embedder_available
from council.records.run import Turn
from council.seats.seat import Seat

if TYPE_CHECKING:
    from council.meter.baseline import BaselineTest


def activation_position(seat: Seat, turn: Turn) -> float | None:
    """Where the turn's recorded projection lies on the axis its seat's model carries, or
    None when it recorded none on that axis."""
    recorded, axis = turn.activations, getattr(seat.model, "axis", None)
    if recorded is None or recorded.axis_projection is None or axis is None:
        return None
    if recorded.axis_id != getattr(axis, "axis_id", None):
        return None
    position = float(axis.position(recorded.axis_projection))
    return position if math.isfinite(position) else None


class EmbeddingProbe:
    """Measures texts with one embedder, loaded on first use; each text is encoded once."""

    def __init__(self, embedder: Embedder | Callable[[], Embedder]) -> None:
        self._source = embedder
        self._embedder: Embedder | None = embedder if isinstance(embedder, Embedder) else None
        self._vectors: dict[str, Any] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            assert callable(self._source)
            self._embedder = self._source()
        return self._embedder

    @property
    def name(self) -> str:
        return self.embedder.name

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            self._vectors.update(zip(new, self.embedder.encode(new), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    def diversity(self, texts: Sequence[str]) -> float:
        from council.meter.metrics import mean_pairwise_distance

        return mean_pairwise_distance(self.encode(texts))

    def against_baseline(
        self, replies: Sequence[tuple[str, str]], baseline: Mapping[str, Sequence[str]]
    ) -> BaselineTest:
        from council.meter.baseline import baseline_test

        models = [model for model, _ in replies]
        pools = {model: self.encode(baseline[model]) for model in dict.fromkeys(models)}
        return baseline_test(self.encode([text for _, text in replies]), models, pools)

    def drift(self, seat: Seat, turn: Turn, assistant: Sequence[str]) -> tuple[float, str] | None:
        inside = activation_position(seat, turn)
        if inside is not None:
            return inside, "activation"
        if not assistant or not turn.text:
            return None
        # numpy only once a guard measures: a run's first call does not wait for it.
        from council.meter.analysis import card_reference_text
        from council.meter.metrics import EmbeddingError, drift_position, normalised_mean

        persona = normalised_mean(self.encode([card_reference_text(seat.persona)]))
        voice = normalised_mean(self.encode(assistant))
        try:
            return drift_position(self.encode([turn.text])[0], persona, voice), "embedding"
        except EmbeddingError:  # the card and the assistant voice coincide
            return None


def default_probe() -> EmbeddingProbe | None:
    """A probe on the bundled embedder (loaded only when a guard measures), or None where it
    is not installed: meter guards then skip and say why."""
    if not embedder_available():
        return None
    return EmbeddingProbe(default_embedder)
