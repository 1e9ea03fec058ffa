"""The no-persona baseline, and the one-sided test of a stage's replies against it.

The *no-persona baseline* is what each seat's model answers to the stage's prompt under the
plain assistant prompt: how far apart sampling alone puts a model's answers. Its point value
(the mean pairwise distance among a few answers) is noisy, so the guard does not compare the
stage's distance with it; it asks whether the stage is shown to be *above* it.

**The test.** Null: the seats' replies are exchangeable with their models' no-persona answers
(a seat answers as its model would with no persona). Statistic: the stage's mean pairwise
distance minus the baseline's, the baseline's taken over the same pair types as the stage's
(a pair of seats on one model against pairs of that model's answers; a pair across models
against pairs across the same two models). Reference: the statistic under every relabelling
that, for each model, draws the stage's number of replies on that model from the pool of its
replies and answers (all of them when there are at most ``limit``, else a seeded random sample
plus the observed one). p is the share of relabellings whose statistic is at least the
observed one: one-sided, small when the stage is more diverse than its models' sampling.

**Why relabel rather than read the stage against subsets of the baseline alone.** The simpler
test (the share of m-answer subsets of the K answers whose mean distance reaches the stage's)
forgets that the K answers are themselves one draw: its subsets share answers and inherit the
sample's own level, so its spread is too narrow. Simulated on exchangeable unit vectors, it
called 13% (3 replies, 8 answers) to 23% (5 replies, 8 answers) of null stages "above" at
alpha 0.05. Relabelling makes the stage's own draw one of the reference draws, so under the
null its rank is uniform and P(p <= alpha) <= alpha exactly (simulated: 0.05 at 3 to 5 seats
against 8 answers). The m-answer subsets of the baseline are still reported, as the floor's
spread (its 5th and 95th percentiles): what m no-persona answers look like.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from council.meter.metrics import check_embeddings

RELABELLINGS = 5000  # all relabellings up to this many, else this many random ones
_TIE = 1e-9  # equal texts give equal distances, summed in different orders


class BaselineShortfall(ValueError):
    """Too few no-persona answers of a model to draw the stage's replies on it from."""


@dataclass(frozen=True)
class BaselineTest:
    """A stage's replies against the no-persona baseline of their models."""

    measured: float  # the stage's mean pairwise distance
    floor: float  # the baseline's mean pairwise distance, over the stage's pair types
    floor_low: float  # 5th percentile of the mean distance of m-answer baseline subsets
    floor_high: float  # 95th percentile
    p_value: float  # share of relabellings at least as far above the baseline as the stage
    relabellings: int  # how many the p-value counts, the observed one included
    exhaustive: bool  # every relabelling, or a seeded random sample of them
    replies: int  # the stage's replies, m
    answers: dict[str, int]  # no-persona answers per model, K

    @property
    def smallest_p(self) -> float:
        """The least p the test can give, whatever the replies: 1 / relabellings."""
        return 1.0 / self.relabellings

    @property
    def method(self) -> str:
        pools = " and ".join(f"{k} of {model}" for model, k in sorted(self.answers.items()))
        drawn = "every one" if self.exhaustive else "a seeded random sample"
        return (
            f"one-sided permutation test: the stage's distance minus the baseline's, against "
            f"{drawn} of {self.relabellings} relabellings of its {self.replies} replies with "
            f"the no-persona answers ({pools}), drawn per model"
        )


def baseline_test(
    stage: NDArray[np.floating],
    stage_models: Sequence[str],
    baseline: Mapping[str, NDArray[np.floating]],
    *,
    limit: int = RELABELLINGS,
    seed: int = 0,
) -> BaselineTest:
    """Test unit vectors ``stage`` (one row a reply, its model in ``stage_models``) against
    ``baseline`` (model -> unit vectors of its no-persona answers). Raises BaselineShortfall
    when a model has fewer answers than the stage has replies on it, or fewer than 2 replies."""
    counts = {model: stage_models.count(model) for model in dict.fromkeys(stage_models)}
    if len(stage_models) < 2 or len(stage_models) != len(stage):
        raise BaselineShortfall("the stage needs two or more replies, one model each")
    for model, m in counts.items():
        k = len(baseline.get(model, ()))
        if k < m:
            raise BaselineShortfall(f"needs at least {m} no-persona answers of {model}, has {k}")
    # One matrix: the stage's replies first, then each model's answers.
    models, m = list(counts), len(stage_models)
    X = np.concatenate(
        [check_embeddings(np.asarray(stage))]
        + [check_embeddings(np.asarray(baseline[model])) for model in models]
    ).astype(np.float64)
    distances = 1.0 - X @ X.T
    labels = np.array([*stage_models, *(model for model in models for _ in baseline[model])])
    rng = np.random.default_rng(seed)

    observed = np.zeros((1, len(labels)), dtype=bool)
    observed[0, :m] = True
    pools = [(np.flatnonzero(labels == model), counts[model]) for model in models]
    draws, exhaustive = _draws(pools, max(limit, 2), rng)
    relabelled = _masks(draws, len(labels))
    if not exhaustive:  # the observed relabelling counts as one of the reference draws
        relabelled = np.concatenate([relabelled[:-1], observed])
    excess = _excess(distances, relabelled, labels, counts)
    observed_excess = float(_excess(distances, observed, labels, counts)[0])

    # The floor's spread: m-answer subsets of the baseline alone, drawn per model as the
    # stage's replies are.
    answers = [(np.flatnonzero(labels[m:] == model) + m, counts[model]) for model in models]
    subsets, _ = _draws(answers, max(limit, 2), rng)
    low, high = np.percentile(_mean_within(distances, _masks(subsets, len(labels)), m), [5, 95])
    measured = float(_mean_within(distances, observed, m)[0])
    return BaselineTest(
        measured=measured,
        floor=measured - observed_excess,
        floor_low=float(low),
        floor_high=float(high),
        p_value=float(np.mean(excess >= observed_excess - _TIE)),
        relabellings=len(excess),
        exhaustive=exhaustive,
        replies=m,
        answers={model: len(baseline[model]) for model in models},
    )


def _draws(
    pools: Sequence[tuple[NDArray[np.intp], int]], limit: int, rng: np.random.Generator
) -> tuple[NDArray[np.intp], bool]:
    """Rows of indices: for each pool, ``count`` of its indices, every combination across
    pools when there are at most ``limit``, else ``limit`` random ones (repeats possible,
    as in any Monte Carlo permutation test)."""
    total = math.prod(math.comb(len(indices), count) for indices, count in pools)
    if total <= limit:
        per_pool = [list(itertools.combinations(indices, count)) for indices, count in pools]
        rows = [sum(parts, ()) for parts in itertools.product(*per_pool)]
        return np.array(rows, dtype=np.intp), True
    parts = [
        indices[np.argsort(rng.random((limit, len(indices))), axis=1)[:, :count]]
        for indices, count in pools
    ]
    return np.concatenate(parts, axis=1), False


def _masks(rows: NDArray[np.intp], width: int) -> NDArray[np.bool_]:
    masks = np.zeros((len(rows), width), dtype=bool)
    masks[np.arange(len(rows))[:, None], rows] = True
    return masks


def _pair_sums(
    distances: NDArray[np.float64], a: NDArray[np.bool_], b: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Per row, the sum of distances from the members of ``a`` to those of ``b``."""
    sums: NDArray[np.float64] = ((a.astype(np.float64) @ distances) * b).sum(axis=1)
    return sums


def _mean_within(
    distances: NDArray[np.float64], members: NDArray[np.bool_], size: int
) -> NDArray[np.float64]:
    """Per row, the mean distance over the pairs of its ``size`` members."""
    return _pair_sums(distances, members, members) / (size * (size - 1))


def _excess(
    distances: NDArray[np.float64],
    stage: NDArray[np.bool_],
    labels: NDArray[np.str_],
    counts: Mapping[str, int],
) -> NDArray[np.float64]:
    """Per relabelling (a row of ``stage``: who are the stage's replies), the stage's mean
    pairwise distance minus the rest's, the rest's weighted to the stage's pair types."""
    m = sum(counts.values())
    within = _mean_within(distances, stage, m)
    rest = ~stage
    by_model = {model: rest & (labels == model) for model in counts}
    sizes = {model: int(np.sum(labels == model)) - counts[model] for model in counts}
    floor = np.zeros(len(stage))
    pairs = m * (m - 1) / 2
    for a, b in itertools.combinations_with_replacement(list(counts), 2):
        if a == b:
            weight = math.comb(counts[a], 2) / pairs
            if weight:
                mean = _mean_within(distances, by_model[a], sizes[a])
                floor += weight * mean
        else:
            weight = counts[a] * counts[b] / pairs
            floor += (
                weight * _pair_sums(distances, by_model[a], by_model[b]) / (sizes[a] * sizes[b])
            )
    result: NDArray[np.float64] = within - floor
    return result
