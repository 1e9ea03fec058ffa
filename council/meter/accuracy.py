"""Accuracy against gold answers, for the eval harness: per arm, between arms on the same
items, and among the seats of one arm.

- **An arm's accuracy.** With one answer per item, the answers are independent Bernoulli
  draws and the Wilson score interval is used (``council.meter.binary.wilson``). With several
  answers per item (samples), answers to one item are not independent: the item is the unit,
  and the interval is a percentile cluster bootstrap over items (items resampled whole).
- **Two arms on the same items.** One answer per item in each: the exact conditional McNemar
  test with Newcombe's paired interval (``council.meter.binary.paired_binary``). Several:
  each item's accuracy in each arm, compared by the paired sign-flip test over items
  (``council.meter.stats.paired_permutation_test``: exact when the flips fit its budget), with
  a cluster bootstrap interval of the mean difference. Across pairs of arms, Holm
  (``council.meter.inference.holm``).
- **Error correlation among seats.** Each seat's correct/incorrect indicator against gold, per
  answer; phi (the Pearson correlation of two 0/1 indicators) for each pair of seats, their
  mean, and Kish's effective number of votes it implies
  (``council.meter.independence.kish_effective_votes``), with a cluster bootstrap interval.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from council.meter.binary import paired_binary, wilson
from council.meter.independence import kish_effective_votes
from council.meter.inference import holm
from council.meter.intervals import Interval
from council.meter.stats import paired_permutation_test

RESAMPLES = 4000
WILSON = "Wilson score interval, one answer per item (statsmodels proportion_confint)"


def _bootstrap_method(items: int) -> str:
    return f"cluster bootstrap over {items} items (percentile, {RESAMPLES} resamples)"


def _by_item(correct: Sequence[int], items: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    if len(correct) != len(items):
        raise ValueError("one item label per answer")
    grouped: dict[Hashable, list[int]] = {}
    for value, item in zip(correct, items, strict=True):
        grouped.setdefault(item, []).append(int(value))
    return grouped


def _percentile(draws: np.ndarray) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return math.nan, math.nan
    return float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))


def _resampled_means(means: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, means.size, size=(RESAMPLES, means.size))
    return np.asarray(means[picks].mean(axis=1))


def accuracy(correct: Sequence[int], items: Sequence[Hashable], *, seed: int = 0) -> Interval:
    """An arm's accuracy: the mean of its items' accuracies, with Wilson's interval when each
    item has one answer and a cluster bootstrap over items when some have several."""
    grouped = _by_item(correct, items)
    if not grouped:
        return Interval(value=None, n=0, method="no answers")
    if all(len(v) == 1 for v in grouped.values()):
        hits, n = sum(v[0] for v in grouped.values()), len(grouped)
        low, high = wilson(hits, n)
        return Interval(value=hits / n, low=low, high=high, n=n, method=WILSON)
    means = np.array([np.mean(v) for v in grouped.values()])
    low, high = _percentile(_resampled_means(means, seed))
    return Interval(
        value=float(means.mean()),
        low=low,
        high=high,
        n=len(correct),
        method=_bootstrap_method(means.size),
        clusters=means.size,
    )


@dataclass(frozen=True)
class ArmComparison:
    """Arm ``b``'s accuracy minus arm ``a``'s on the items both answered."""

    a: str
    b: str
    difference: Interval
    p_value: float
    test_method: str
    items: int
    adjusted_p: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference.to_json(),
            "p_value": float(f"{self.p_value:.4g}"),
            "adjusted_p": None if self.adjusted_p is None else float(f"{self.adjusted_p:.4g}"),
            "holm": "Holm step-down across every pair of arms (council.meter.inference.holm)",
            "test_method": self.test_method,
            "items": self.items,
        }


def compare_arms(
    a: str,
    a_answers: Mapping[Hashable, Sequence[int]],
    b: str,
    b_answers: Mapping[Hashable, Sequence[int]],
    *,
    seed: int = 0,
) -> ArmComparison:
    """Paired by item: exact McNemar with one answer per item in both arms, else the sign-flip
    test on item accuracies with a cluster bootstrap interval (module notes)."""
    shared = [item for item in a_answers if item in b_answers]
    if not shared:
        raise ValueError(f"arms {a} and {b} share no item")
    if all(len(a_answers[i]) == 1 and len(b_answers[i]) == 1 for i in shared):
        result = paired_binary([a_answers[i][0] for i in shared], [b_answers[i][0] for i in shared])
        difference = Interval(
            value=result.difference,
            low=result.low,
            high=result.high,
            n=result.n_pairs,
            method=result.interval_method,
        )
        return ArmComparison(a, b, difference, result.p_value, result.test_method, len(shared))
    before = np.array([np.mean(a_answers[i]) for i in shared])
    after = np.array([np.mean(b_answers[i]) for i in shared])
    test = paired_permutation_test(before.tolist(), after.tolist(), seed=seed)
    low, high = _percentile(_resampled_means(after - before, seed))
    difference = Interval(
        value=float((after - before).mean()),
        low=low,
        high=high,
        n=len(shared),
        method=_bootstrap_method(len(shared)),
        clusters=len(shared),
    )
    method = f"{test.method} on item accuracies"
    return ArmComparison(a, b, difference, test.p_value, method, len(shared))


def compare_all(
    answers: Mapping[str, Mapping[Hashable, Sequence[int]]], *, seed: int = 0
) -> list[ArmComparison]:
    """Every pair of arms (in the order given), Holm-adjusted together."""
    pairs = [
        compare_arms(a, answers[a], b, answers[b], seed=seed)
        for a, b in itertools.combinations(answers, 2)
    ]
    adjusted = holm([c.p_value for c in pairs])
    return [
        ArmComparison(c.a, c.b, c.difference, c.p_value, c.test_method, c.items, p)
        for c, p in zip(pairs, adjusted, strict=True)
    ]


def _mean_phi(counts: np.ndarray, hits: np.ndarray, both: np.ndarray) -> np.ndarray:
    """The mean phi over pairs of seats, for each row of weighted sums: ``counts`` (R,) the
    answers, ``hits`` (R, seats) each seat's correct ones, ``both`` (R, pairs) those both
    seats of a pair got right. A pair where a seat never varies has no phi and is left out
    of the mean (NaN when no pair has one)."""
    pairs = list(itertools.combinations(range(hits.shape[1]), 2))
    rate = hits / counts[:, None]
    variance = rate * (1 - rate)
    phis = np.full(both.shape, np.nan)
    for k, (i, j) in enumerate(pairs):
        scale = np.sqrt(variance[:, i] * variance[:, j])
        covariance = both[:, k] / counts - rate[:, i] * rate[:, j]
        ok = scale > 1e-12
        phis[ok, k] = covariance[ok] / scale[ok]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no phi: NaN, said above
        return np.asarray(np.nanmean(phis, axis=1))


@dataclass(frozen=True)
class ErrorCorrelation:
    """How alike the seats of one arm err: mean pairwise phi of their correct indicators, and
    the effective number of independent votes it implies."""

    seats: int
    answers: int
    mean_phi: Interval
    n_eff: Interval

    def to_json(self) -> dict[str, Any]:
        return {
            "seats": self.seats,
            "answers": self.answers,
            "mean_phi": self.mean_phi.to_json(),
            "n_eff": self.n_eff.to_json(),
        }


def error_correlation(
    rows: Sequence[Sequence[int]], items: Sequence[Hashable], *, seed: int = 0
) -> ErrorCorrelation | None:
    """``rows``: one per answer, each seat's 1 (correct) or 0; ``items``: each row's item.
    None with fewer than two seats, or where no pair of seats varies."""
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2 or matrix.shape[0] < 3:
        return None
    seats = matrix.shape[1]
    # Per item: its answers, each seat's right ones, each pair's both-right ones; a resample
    # of items (whole: an item's answers share its difficulty) is then a weighted sum.
    _, codes = np.unique(np.asarray([str(i) for i in items]), return_inverse=True)
    groups = int(codes.max()) + 1
    pairs = list(itertools.combinations(range(seats), 2))
    per_item = np.zeros((groups, 1 + seats + len(pairs)))
    np.add.at(per_item[:, 0], codes, 1)
    np.add.at(per_item[:, 1 : 1 + seats], codes, matrix)
    both = np.stack([matrix[:, i] * matrix[:, j] for i, j in pairs], axis=1)
    np.add.at(per_item[:, 1 + seats :], codes, both)

    def mean_phi_of(sums: np.ndarray) -> np.ndarray:
        return _mean_phi(sums[:, 0], sums[:, 1 : 1 + seats], sums[:, 1 + seats :])

    rho = float(mean_phi_of(per_item.sum(axis=0, keepdims=True))[0])
    if not math.isfinite(rho):
        return None
    rng = np.random.default_rng(seed)
    weights = np.zeros((RESAMPLES, groups))
    picks = rng.integers(0, groups, size=(RESAMPLES, groups))
    np.add.at(weights, (np.arange(RESAMPLES)[:, None], picks), 1)
    low, high = _percentile(mean_phi_of(weights @ per_item))
    method = _bootstrap_method(groups)
    phi = Interval(value=rho, low=low, high=high, n=matrix.shape[0], method=method)
    # n_eff falls as rho rises: the interval's ends swap.
    n_eff = Interval(
        value=kish_effective_votes(seats, rho),
        low=kish_effective_votes(seats, high) if math.isfinite(high) else None,
        high=kish_effective_votes(seats, low) if math.isfinite(low) else None,
        n=matrix.shape[0],
        method=f"Kish n / (1 + (n - 1) rho) at the mean phi and its interval's ends ({method})",
    )
    return ErrorCorrelation(seats, matrix.shape[0], phi, n_eff)
