"""Intervals and tests for experiment metrics, from ``scipy.stats``: BCa bootstrap intervals of a
mean and of a difference in means, and permutation tests (exact when the groups are small).

Every result names the method that made it, because a degenerate sample (one value, all values
equal) has no BCa interval and gets a plainly stated one instead of a silent fallback. Intervals
are ``council.meter.intervals.Interval``, the one interval type.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from council.meter.intervals import Interval

LEVEL = 0.95
RESAMPLES = 9999
BCA = f"BCa bootstrap, {RESAMPLES} resamples (scipy.stats.bootstrap)"
PERCENTILE = f"percentile bootstrap, {RESAMPLES} resamples (BCa undefined for these values)"
ALL_EQUAL = "all values equal"
ONE_VALUE = "one value: no interval"
TOO_FEW = "fewer than 3 values: too few for a bootstrap interval"
MIN_BOOTSTRAP = 3  # two values resample to three distinct means: no interval worth the name
EXACT_PERMUTATION = "exact permutation test (scipy.stats.permutation_test)"
RANDOM_PERMUTATION = f"permutation test, {RESAMPLES} resamples (scipy.stats.permutation_test)"
EXACT_PAIRED = "exact paired sign-flip test (scipy.stats.permutation_test)"
RANDOM_PAIRED = f"paired sign-flip test, {RESAMPLES} resamples (scipy.stats.permutation_test)"


def _mean(*samples: Any, axis: int = -1) -> Any:
    return np.mean(samples[0], axis=axis)


def _difference(a: Any, b: Any, axis: int = -1) -> Any:
    """Mean of b minus mean of a."""
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def _bootstrap(samples: tuple[Any, ...], statistic: Any, seed: int) -> tuple[float, float, str]:
    from scipy import stats  # scipy is heavy: loaded when an experiment is summarised

    def interval(method: str) -> tuple[float, float]:
        with warnings.catch_warnings():
            # A BCa failure is detected below (non-finite bounds) and said in the method.
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                samples,
                statistic,
                n_resamples=RESAMPLES,
                confidence_level=LEVEL,
                method=method,
                vectorized=True,
                random_state=np.random.default_rng(seed),
            )
        ci = result.confidence_interval
        return float(ci.low), float(ci.high)

    low, high = interval("BCa")
    if math.isfinite(low) and math.isfinite(high):
        return low, high, BCA
    low, high = interval("percentile")
    return low, high, PERCENTILE


def mean_interval(values: Sequence[float], *, seed: int = 0) -> Interval:
    """The mean of ``values`` with a BCa 95% interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Interval(value=None, n=0, method="no values")
    mean = float(data.mean())
    if data.size == 1:
        return Interval(value=mean, n=1, method=ONE_VALUE)
    if np.ptp(data) == 0:
        return Interval(value=mean, low=mean, high=mean, n=int(data.size), method=ALL_EQUAL)
    if data.size < MIN_BOOTSTRAP:
        return Interval(value=mean, n=int(data.size), method=TOO_FEW)
    low, high, method = _bootstrap((data,), _mean, seed)
    return Interval(value=mean, low=low, high=high, n=int(data.size), method=method)


def difference_interval(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> Interval:
    """Mean of ``b`` minus mean of ``a``, with a BCa 95% interval (independent samples)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2 or y.size < 2:
        raise ValueError("each group needs at least two values")
    difference = float(y.mean() - x.mean())
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        n = int(x.size + y.size)
        return Interval(value=difference, low=difference, high=difference, n=n, method=ALL_EQUAL)
    if min(x.size, y.size) < MIN_BOOTSTRAP:
        return Interval(value=difference, n=int(x.size + y.size), method=TOO_FEW)
    low, high, method = _bootstrap((x, y), _difference, seed)
    return Interval(value=difference, low=low, high=high, n=int(x.size + y.size), method=method)


@dataclass(frozen=True)
class PermutationResult:
    p_value: float
    method: str


def permutation_test(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> PermutationResult:
    """Two-sided permutation test of a difference in means; exact when every relabelling of
    the pooled values fits in the resample budget."""
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("both groups need values")
    exact = math.comb(x.size + y.size, x.size) <= RESAMPLES
    result = stats.permutation_test(
        (x, y),
        _difference,
        n_resamples=RESAMPLES,
        vectorized=True,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    method = EXACT_PERMUTATION if exact else RANDOM_PERMUTATION
    return PermutationResult(float(result.pvalue), method)


def paired_permutation_test(
    before: Sequence[float], after: Sequence[float], *, seed: int = 0
) -> PermutationResult:
    """Two-sided test that paired differences (``after - before``) average zero, by flipping
    the sign of each pair's difference; exact when every flip fits in the resample budget.
    On 0/1 outcomes it is McNemar's exact test."""
    from scipy import stats

    x, y = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if x.size == 0 or x.size != y.size:
        raise ValueError("paired values: both sides need the same, non-zero, number")
    if not np.any(y - x):
        return PermutationResult(1.0, "no pair differs")
    exact = 2**x.size <= RESAMPLES
    result = stats.permutation_test(
        (y, x),
        _paired_difference,
        permutation_type="samples",
        n_resamples=RESAMPLES,
        vectorized=True,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    return PermutationResult(float(result.pvalue), EXACT_PAIRED if exact else RANDOM_PAIRED)


def _paired_difference(a: Any, b: Any, axis: int = -1) -> Any:
    return np.mean(a - b, axis=axis)


__all__ = [
    "Interval",
    "PermutationResult",
    "difference_interval",
    "mean_interval",
    "paired_permutation_test",
    "permutation_test",
]
