"""How many independent votes a council's seats carry: Kish's effective number.

n seats whose votes correlate pairwise at a mean rho carry the information of
n_eff = n / (1 + (n - 1) * rho) independent ones (Kish 1965, the design effect of equally
weighted, equally correlated units). One definition, read by the tally's effective votes
within a run, a panel's profile across runs and the eval harness's error correlation.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from council.engine.gates import word_similarity
from council.engine.independence import Independence, VoteEvidence
from council.records.run import EffectiveVotes
from council.seats.routing import model_family


def kish_effective_votes(n: int, mean_correlation: float) -> float:
    """n_eff for ``n`` votes at ``mean_correlation``, clipped to [0, 1]: negative correlation
    among votes is not extra independence a tally can bank on, and a mean above 1 is noise."""
    if n < 1:
        raise ValueError(f"a tally needs at least one vote, got {n}")
    rho = min(max(float(mean_correlation), 0.0), 1.0)
    return n / (1.0 + (n - 1) * rho)


def mean_off_diagonal(matrix: Sequence[Sequence[float]]) -> float:
    """The mean pairwise correlation of a square correlation matrix (its off-diagonal mean)."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a correlation matrix is square, got shape {m.shape}")
    n = m.shape[0]
    if n < 2:
        return 0.0
    return float((m.sum() - np.trace(m)) / (n * (n - 1)))


# --- the correlation of seats, and what it makes of a tally ------------------------------
#
# Two estimates, the panel's preferred when it has enough runs:
#
# * **Across runs of the panel** (``across_runs``). Each earlier run of the same cards on the
#   same models left its seats' stances (``council.records.panel``). A pair's correlation is
#   Cohen's kappa of their stances over the runs both voted in: agreement beyond what each
#   seat's own mix of stances gives by chance, (P_o - P_e) / (1 - P_e). On yes/no ballots
#   with equal marginals it equals the phi coefficient, the correlation the Kish formula
#   takes. (The "voted with the majority" indicator was not used: under independence it is
#   itself correlated, negatively at three seats, since two seats that agree are both the
#   majority.) It is stance correlation, not error correlation: seats that agree because a
#   question has one plain answer count as correlated (the eval harness measures errors
#   against gold). Interval: percentile bootstrap over runs (resampled whole, so each run's
#   seats stay together), B = 1000, seeded.
# * **Within this run** (``within_run``), for a panel with fewer runs than ``MIN_PANEL_RUNS``.
#   A pair's correlation is the larger of (a) a prior for sharing a model (``SAME_MODEL``) or
#   a model family (``SAME_FAMILY``: its maker, as seating and the audit read it,
#   ``council.seats.routing.model_family``): a shared model is what one run cannot measure,
#   and a 9-judge panel across 7 families carried about 2 effective votes (arXiv
#   2605.29800); the two values are this module's priors, not that study's estimates. And
#   (b) how far their replies' word overlap (Jaccard, never the embedder: this path must stay
#   cheap) lies above the placebo floor, scaled to 1 for identical replies:
#   max(0, (s - floor) / (1 - floor)). The placebo floor is the overlap of replies that
#   share the question and the run but not the prompt: one seat's reply in one stage against
#   another seat's in another stage. Sharing the prompt still adds some overlap for
#   independent seats, so the within-run estimate leans high. Interval: percentile
#   bootstrap over the run's stages (B = 500, seeded); a run with one stage of replies has
#   no placebo, and the estimate is the model prior alone with no interval.

# Earlier runs of a panel before its profile is the basis. Simulated (5 yes/no seats, 100
# panels each): the 95% interval covered the true n_eff 87-99% of the time at 10 runs,
# 89-97% at 20 and 93-96% at 40; below 20 it under-covers correlated panels.
MIN_PANEL_RUNS = 20
SAME_MODEL = 0.5  # prior correlation of two seats on one model
SAME_FAMILY = 0.25  # ... on one model family
RIDGE = 0.1  # shrinkage of the correlation matrix toward identity before it is inverted
CORRELATED = 0.75  # n_eff's upper end below this share of n: "rests on correlated seats"
LEVEL = 0.95
_FLOOR_PAIRS = 200  # placebo pairs measured at most (the word overlap of each costs little)


def model_prior(models: Sequence[str]) -> NDArray[np.float64]:
    """Each pair's prior correlation for the models it sits on (1 on the diagonal)."""
    n = len(models)
    prior = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        same = models[i] == models[j]
        family = model_family(models[i]) == model_family(models[j])
        prior[i, j] = prior[j, i] = SAME_MODEL if same else SAME_FAMILY if family else 0.0
    np.fill_diagonal(prior, 1.0)
    return prior


def independence_weights(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Seat weights from a correlation matrix: the row sums of the inverse of
    (1 - RIDGE) R + RIDGE I, clipped at 0 and scaled to sum to n. These are the weights of
    the minimum-variance (GLS) mean of correlated votes: a seat that duplicates others gives
    its weight up to them, equicorrelated seats weigh 1 each. The ridge keeps copies (a
    singular R) invertible; unknown pairs (NaN) count as uncorrelated."""
    r = np.nan_to_num(np.clip(matrix, 0.0, 1.0), nan=0.0)
    n = r.shape[0]
    np.fill_diagonal(r, 1.0)
    inverse = np.linalg.inv((1 - RIDGE) * r + RIDGE * np.eye(n))
    rows = np.clip(inverse.sum(axis=1), 0.0, None)
    total = rows.sum()
    return rows * n / total if total > 0 else np.ones(n)


def _effective(
    seats: Sequence[str],
    matrix: NDArray[np.float64],
    draws: NDArray[np.float64] | None,
    basis: str,
    method: str,
) -> EffectiveVotes:
    """n_eff from the pairwise ``matrix`` (NaN: unknown, left out of the mean), its interval
    from bootstrap ``draws`` of the mean correlation (None: no interval)."""
    n = len(seats)
    pairs = matrix[np.triu_indices(n, 1)]
    known = pairs[~np.isnan(pairs)]
    rho = float(known.mean()) if known.size else 0.0
    point = kish_effective_votes(n, rho)
    low, high = point, point
    if draws is not None and draws.size:
        tail = (1 - LEVEL) / 2 * 100
        lo_rho, hi_rho = np.percentile(draws, [tail, 100 - tail])
        low, high = kish_effective_votes(n, hi_rho), kish_effective_votes(n, lo_rho)
    weights = independence_weights(matrix) if n > 1 else np.ones(n)
    note = None
    if n > 1 and high < CORRELATED * n:
        note = (
            f"the {n} counted votes are correlated: about {point:.1f} independent votes "
            f"({low:.1f} to {high:.1f}; basis: {basis})"
        )
    return EffectiveVotes(
        n_eff=round(point, 3),
        low=round(min(low, point), 3),
        high=round(max(high, point), 3),
        basis=basis,
        n=n,
        mean_correlation=round(rho, 4),
        method=method,
        weights={s: round(float(w), 4) for s, w in zip(seats, weights, strict=True)},
        note=note,
    )


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def _mean_pairs(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean of each matrix's known (non-NaN) pairs above the diagonal."""
    n = matrices.shape[-1]
    pairs = matrices[..., *np.triu_indices(n, 1)]
    known = ~np.isnan(pairs)
    total = np.where(known, pairs, 0.0).sum(axis=-1)
    count = known.sum(axis=-1)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


# -- across runs -----------------------------------------------------------------------------

MIN_PAIR_RUNS = 5  # runs a pair must both have voted in for its kappa to count
BOOTSTRAP_RUNS = 1000


def stance_kappas(
    runs: Sequence[Mapping[str, str]], seats: Sequence[str], weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Cohen's kappa of each pair's stances over ``runs``, once per row of ``weights`` (B x
    runs: how often each run counts; ones for the estimate, a bootstrap's counts for a
    draw). B x n x n, NaN where a pair shares too few runs or either seat never varied."""
    codes = {s: k for k, s in enumerate(sorted({v for r in runs for v in r.values()}))}
    x = np.array([[codes.get(r.get(seat, ""), -1) for seat in seats] for r in runs])
    present = (x >= 0).astype(float)  # runs x n
    both = present[:, :, None] * present[:, None, :]  # runs x n x n
    agree = both * (x[:, :, None] == x[:, None, :])
    # Stances seen in one run only (free stances, question by question) are kept out of the
    # one-hot, whose width is the cost: their share of chance is exact without it, w_r^2 / N^2
    # where both seats took it in run r, and 0 otherwise.
    in_runs = np.zeros(len(codes), dtype=int)
    for row in x:
        in_runs[np.unique(row[row >= 0])] += 1
    shared = np.flatnonzero(in_runs >= 2)
    lone = agree * (in_runs[np.maximum(x, 0)] == 1)[:, :, None]
    onehot = (x[..., None] == shared).astype(float)  # runs x n x K (shared stances)
    b, (r, n, k) = weights.shape[0], onehot.shape
    count = weights @ both.reshape(r, n * n)
    norm = np.maximum(count, 1e-12)
    observed = (weights @ agree.reshape(r, n * n)) / norm
    # Seat i's stance shares over the runs seat j voted in too: B x n(i) x n(j) x K.
    joint = np.einsum("rj,rik->rijk", present, onehot).reshape(r, -1)
    shares = (weights @ joint).reshape(b, n, n, k) / norm.reshape(b, n, n, 1)
    chance = (shares * shares.transpose(0, 2, 1, 3)).sum(axis=-1).reshape(b, n * n)
    chance += (weights**2 @ lone.reshape(r, n * n)) / norm**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - chance) / (1.0 - chance)
    unknown = (count < MIN_PAIR_RUNS) | (1.0 - chance < 1e-9)
    return np.where(unknown, np.nan, kappa).reshape(b, n, n)


def across_runs(
    runs: Sequence[Mapping[str, str]], seats: Sequence[str], seed: int = 0
) -> EffectiveVotes | None:
    """Effective votes of ``seats`` from their stances over a panel's earlier ``runs`` (see
    the notes above); None when no pair of them shares enough runs to be measured."""
    if len(seats) < 2 or not runs:
        return None
    point = stance_kappas(runs, seats, np.ones((1, len(runs))))[0]
    if np.isnan(_mean_pairs(point)):
        return None
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), BOOTSTRAP_RUNS)
    draws = _mean_pairs(stance_kappas(runs, seats, counts.astype(float)))
    return _effective(
        seats,
        point,
        draws[~np.isnan(draws)],
        f"{len(runs)} earlier runs of this panel",
        "Kish n_eff; pairwise Cohen's kappa of stances over the panel's earlier runs; "
        f"{LEVEL:.0%} percentile bootstrap over runs (B={BOOTSTRAP_RUNS})",
    )


# -- within one run --------------------------------------------------------------------------

BOOTSTRAP_STAGES = 500


def within_run(
    evidence: VoteEvidence, similarity: Callable[[str, str], float] = word_similarity
) -> EffectiveVotes:
    """Effective votes of the counted seats from this run alone (see the notes above)."""
    seats = list(evidence.stances)
    n = len(seats)
    prior = model_prior([evidence.models.get(s, "") for s in seats])
    units = [texts for texts in evidence.texts.values() if sum(s in texts for s in seats) >= 2]
    floor = _placebo_floor(units, seats, similarity)
    if n < 2 or floor is None:
        return _effective(
            seats,
            prior,
            None,
            f"this run: {n} seats' models only (fewer than two stages of replies)",
            "Kish n_eff; pairwise correlation = shared-model prior; no interval",
        )
    excess = np.stack([_excess(texts, seats, similarity, floor) for texts in units])
    rng = np.random.default_rng(_seed(evidence.run_id + evidence.stage))
    picks = rng.integers(0, len(units), (BOOTSTRAP_STAGES, len(units)))
    draws = _mean_pairs(np.maximum(prior, _nanmean(excess[picks], axis=1)))
    return _effective(
        seats,
        np.maximum(prior, _nanmean(excess, axis=0)),
        draws,
        f"this run: {n} seats' replies in {len(units)} stages, placebo-corrected",
        "Kish n_eff; pairwise correlation = max(shared-model prior, word overlap above the "
        f"cross-stage placebo floor {floor:.3f}); {LEVEL:.0%} percentile bootstrap over the "
        f"run's stages (B={BOOTSTRAP_STAGES})",
    )


def _nanmean(values: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """The mean over ``axis`` of known values; 0 (no evidence of correlation) where none."""
    known = ~np.isnan(values)
    total = np.where(known, values, 0.0).sum(axis=axis)
    count = known.sum(axis=axis)
    return np.divide(total, count, out=np.zeros(total.shape), where=count > 0)


def _placebo_floor(
    units: Sequence[Mapping[str, str]],
    seats: Sequence[str],
    similarity: Callable[[str, str], float],
) -> float | None:
    """Mean overlap of two seats' replies in two different stages; None with one stage."""
    pairs = [
        (a[i], b[j])
        for (u, a), (v, b) in itertools.permutations(enumerate(units), 2)
        for i, j in itertools.permutations(seats, 2)
        if u < v and i in a and j in b
    ]
    if not pairs:
        return None
    step = max(1, len(pairs) // _FLOOR_PAIRS)
    return float(np.mean([similarity(x, y) for x, y in pairs[::step]]))


def _excess(
    texts: Mapping[str, str],
    seats: Sequence[str],
    similarity: Callable[[str, str], float],
    floor: float,
) -> NDArray[np.float64]:
    """One stage's pairwise overlap above the floor, scaled to 1 at identical replies."""
    n = len(seats)
    out = np.full((n, n), np.nan)
    for i, j in itertools.combinations(range(n), 2):
        if seats[i] in texts and seats[j] in texts:
            s = similarity(texts[seats[i]], texts[seats[j]])
            out[i, j] = out[j, i] = max(0.0, (s - floor) / (1.0 - floor)) if floor < 1 else 0.0
    return out


def estimator(earlier: Sequence[Mapping[str, str]]) -> Independence:
    """The estimate a run's tallies take: across ``earlier`` runs of the panel (their
    stances, oldest first) when there are at least ``MIN_PANEL_RUNS``, else within the run."""

    def estimate(evidence: VoteEvidence) -> EffectiveVotes | None:
        seats = list(evidence.stances)
        if not seats:
            return None
        if len(earlier) >= MIN_PANEL_RUNS:
            found = across_runs(earlier, seats, _seed(evidence.run_id + evidence.stage))
            if found is not None:
                return found
        return within_run(evidence)

    return estimate
