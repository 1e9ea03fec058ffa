"""The arithmetic of the assistant axis, on plain arrays: contrast of means, projections, how
well a direction separates two groups (AUC with a bootstrap interval), and correlations.

Nothing here touches a model, so it is tested on synthetic tensors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Matrix = Any  # a numpy array; numpy's own typing of shapes adds nothing here


def contrast_of_means(positive: Matrix, negative: Matrix) -> Matrix:
    """mean(positive) - mean(negative), row-wise samples: the direction of the cited work.

    For the assistant axis, ``positive`` holds the default assistant's activations and
    ``negative`` the persona-conditioned ones, so a larger projection means more Assistant."""
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if pos.ndim != 2 or neg.ndim != 2 or pos.shape[1] != neg.shape[1]:
        raise ValueError(f"expected two sample matrices of one width, got {pos.shape}, {neg.shape}")
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("a contrast of means needs samples on both sides")
    result: Matrix = pos.mean(axis=0) - neg.mean(axis=0)
    return result


def unit(vector: Matrix) -> Matrix:
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm < 1e-12:
        raise ValueError("the two groups have the same mean: the direction is undefined")
    return v / norm


def project(samples: Matrix, direction: Matrix, origin: Matrix | None = None) -> Matrix:
    """Each sample's coordinate along ``direction`` (made unit length), measured from
    ``origin`` (the midpoint of the two group means, for an axis) when given."""
    X = np.asarray(samples, dtype=np.float64)
    if origin is not None:
        X = X - np.asarray(origin, dtype=np.float64)
    result: Matrix = X @ unit(direction)
    return result


def auc(positive: Sequence[float] | Matrix, negative: Sequence[float] | Matrix) -> float:
    """The probability that a random positive scores above a random negative (ties count
    half): the Mann-Whitney form of the area under the ROC curve."""
    pos = np.asarray(positive, dtype=np.float64)[:, None]
    neg = np.asarray(negative, dtype=np.float64)[None, :]
    if pos.size == 0 or neg.size == 0:
        raise ValueError("an AUC needs scores on both sides")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float | None
    high: float | None
    method: str  # how the interval was made, or why there is none
    confidence: float = 0.95

    def to_json(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "method": self.method, "confidence": self.confidence}  # fmt: skip


def auc_interval(
    positive: Sequence[float] | Matrix,
    negative: Sequence[float] | Matrix,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """AUC with a bootstrap interval that resamples each group separately (BCa where the
    resamples vary; a percentile interval where BCa is undefined, as at AUC = 1)."""
    from scipy.stats import bootstrap

    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    estimate = auc(pos, neg)
    if len(pos) < 2 or len(neg) < 2:
        return Interval(estimate, None, None, "no interval: fewer than 2 samples in a group")

    def statistic(p: Matrix, n: Matrix, axis: int = -1) -> Matrix:
        p, n = np.moveaxis(p, axis, -1), np.moveaxis(n, axis, -1)
        greater = (p[..., :, None] > n[..., None, :]).mean(axis=(-2, -1))
        ties = (p[..., :, None] == n[..., None, :]).mean(axis=(-2, -1))
        return greater + 0.5 * ties

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # BCa is undefined when every resample agrees
            warnings.simplefilter("ignore")
            result = bootstrap(
                (pos, neg), statistic, vectorized=True, paired=False, n_resamples=resamples,
                confidence_level=confidence, method=method, rng=np.random.default_rng(seed),
            )  # fmt: skip
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(estimate, low, high, f"bootstrap {method}, {resamples} resamples",
                            confidence)  # fmt: skip
    return Interval(estimate, estimate, estimate, "bootstrap degenerate: every resample agrees")


def correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Pearson and Spearman correlation of paired values, with p-values; ``None`` with a
    reason when fewer than 3 pairs or either side is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out: dict[str, Any] = {"pairs": len(a), "pearson": None, "spearman": None, "note": None}
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)}")
    if len(a) < 3:
        out["note"] = f"{len(a)} paired turns: a correlation needs at least 3"
        return out
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        out["note"] = "one side is constant over these turns: no correlation"
        return out
    from scipy.stats import pearsonr, spearmanr

    pearson, spearman = pearsonr(a, b), spearmanr(a, b)
    out["pearson"] = {"r": round(float(pearson.statistic), 4), "p": float(pearson.pvalue)}
    out["spearman"] = {"rho": round(float(spearman.statistic), 4), "p": float(spearman.pvalue)}
    return out
