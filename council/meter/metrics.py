"""Diversity metrics over row-normalised embeddings (one row per turn).

Every function takes an ``(n, d)`` float array whose rows have unit length, so a dot product is
a cosine similarity. Where a metric is undefined (one seat has no diversity) the function says
why instead of returning NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.floating[Any]]
_UNIT_TOLERANCE = 1e-3


class EmbeddingError(ValueError):
    """Embeddings of the wrong shape, not normalised, or of mismatched dimension."""


def check_embeddings(X: Matrix, dimension: int | None = None) -> Matrix:
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if X.ndim != 2:
        raise EmbeddingError(f"embeddings must be a 2-D array (n, d); got shape {X.shape}")
    if dimension is not None and X.shape[1] != dimension:
        raise EmbeddingError(
            f"embeddings have dimension {X.shape[1]}, expected {dimension}: "
            "were they made by another embedding model?"
        )
    if X.shape[0] and not np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=_UNIT_TOLERANCE):
        raise EmbeddingError("embedding rows must be normalised to unit length")
    return X


def vendi_score(X: Matrix) -> float:
    """Vendi score: exp of the Shannon entropy of the eigenvalues of K/n, K = X Xᵀ.

    The effective number of distinct items, from 1 (all the same) to n (all orthogonal).
    K/n shares its non-zero eigenvalues with XᵀX/n (d × d), so for n > d the cost is
    O(n·d²) rather than O(n³): 100,000 × 384 vectors take about a second.
    """
    X = check_embeddings(X)
    n, d = X.shape
    if n == 0:
        raise EmbeddingError("the Vendi score of no items is undefined")
    # The product stays in the input precision (float32 embeddings: fast, ample for an
    # entropy); the small matrix is decomposed in float64.
    gram = (X @ X.T) if n <= d else (X.T @ X)
    eigenvalues = np.linalg.eigvalsh(gram.astype(np.float64) / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    eigenvalues = eigenvalues / eigenvalues.sum()  # guards against rounding in the trace
    return float(math.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def mean_pairwise_distance(X: Matrix) -> float:
    """Mean cosine distance (1 - cosine) over all pairs of distinct rows; needs n >= 2."""
    X = check_embeddings(X)
    n = X.shape[0]
    if n < 2:
        raise EmbeddingError("pairwise distance needs at least two items")
    similarity = X @ X.T
    off_diagonal = (similarity.sum() - np.trace(similarity)) / (n * (n - 1))
    return float(1.0 - off_diagonal)


@dataclass(frozen=True)
class CentroidDistances:
    distances: list[float]
    outliers: list[bool]


def centroid_distances(X: Matrix, *, factor: float = 1.5) -> CentroidDistances:
    """Each row's cosine distance to the normalised centroid; a row is an outlier when its
    distance exceeds ``factor`` times the median of the others' (needs three or more rows)."""
    X = check_embeddings(X)
    centroid = X.mean(axis=0)
    norm = np.linalg.norm(centroid)
    centroid = centroid / norm if norm > 0 else centroid
    distances = [float(1.0 - row @ centroid) for row in X]
    outliers = [False] * len(distances)
    if len(distances) >= 3:
        for i, distance in enumerate(distances):
            others = distances[:i] + distances[i + 1 :]
            outliers[i] = distance > factor * float(np.median(others)) and distance > 0.05
    return CentroidDistances(distances, outliers)


def drift_position(turn: Matrix, persona: Matrix, assistant: Matrix) -> float:
    """Where a turn lies on the axis from its persona's own voice (0) to the same model's
    generic-assistant voice (1): the projection onto the segment, unclipped so overshoot shows.

    An embedding-space analog of the "assistant axis" found in activations: with API models
    we cannot read activations, but we can see a turn sliding toward the default voice.
    """
    axis = assistant - persona
    length = float(axis @ axis)
    if length < 1e-9:
        raise EmbeddingError("the persona and assistant voices coincide: drift is undefined")
    return float((turn - persona) @ axis / length)


def normalised_mean(X: Matrix) -> Matrix:
    mean = np.asarray(X, dtype=np.float64).mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else mean


# Below this mean squared distance from the centroid (per answer) the answers are the same to
# float32 rounding, and a share of their variance is noise divided by noise.
NEAR_ZERO_VARIANCE = 1e-6


@dataclass(frozen=True)
class Decomposition:
    """Shares of the total sum of squares; ``None`` where a share is undefined (``note`` says
    why). Shares are never rescaled to add up."""

    persona: float | None
    family: float | None
    residual: float | None
    total: float
    note: str | None = None


def decompose_variance(
    X: Matrix, personas: Sequence[str], families: Sequence[str]
) -> Decomposition:
    """Split the embeddings' total sum of squares into persona, model-family and residual
    shares (additive main effects, as in a two-way ANOVA on a balanced design).

    With near-zero total variance every share is undefined. Where persona and family are
    confounded (each persona always on one family) their shares overlap and add up to more
    than the whole: each is reported, the residual is undefined, nothing is rescaled."""
    X = check_embeddings(X)
    if not (len(personas) == len(families) == X.shape[0]):
        raise EmbeddingError("one persona and one family label per embedding row")
    grand = X.mean(axis=0, dtype=np.float64)
    total = float(((X - grand) ** 2).sum())
    if X.shape[0] == 0 or total / X.shape[0] < NEAR_ZERO_VARIANCE:
        note = "undefined: the answers have near-zero variance (they are all but identical)"
        return Decomposition(None, None, None, total, note)

    def between(labels: Sequence[str]) -> float:
        ss = 0.0
        for label in set(labels):
            rows = X[[i for i, lab in enumerate(labels) if lab == label]]
            ss += rows.shape[0] * float(((rows.mean(axis=0) - grand) ** 2).sum())
        return ss

    persona, family = between(personas) / total, between(families) / total
    if persona + family > 1.0 + 1e-6:
        note = (
            "residual undefined: persona and model family overlap (confounded in this design), "
            "so their shares add up to more than the whole; they are not rescaled"
        )
        return Decomposition(persona, family, None, total, note)
    return Decomposition(persona, family, max(0.0, 1.0 - persona - family), total)
