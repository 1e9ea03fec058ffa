"""Inference that respects an experiment's design: the question is the unit.

Answers to one question share its wording, so they are not independent draws; treating units as
independent made intervals too narrow (a question random effect is 19-70% of unit variance in
the shipped data). Here every interval and test is made on question means with small-sample t
methods (scipy), arms that share questions are compared paired by question, secondary p-values
are Holm-adjusted (statsmodels), power comes from the same t test (statsmodels), and the variance
split is a sequential decomposition with a label-noise baseline. Every result names its method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from council.meter.intervals import Interval
from council.meter.metrics import NEAR_ZERO_VARIANCE, Matrix, check_embeddings
from council.meter.stats import LEVEL

ALPHA = 0.05
NO_VALUES = "no values"
HOLM = "Holm step-down adjustment across the secondary endpoints (statsmodels multipletests)"
POWER = "two-sided one-sample t test on question-level differences (statsmodels TTestPower)"
COMPONENTS = (
    "one-way random-effects ANOVA, method of moments (a negative between-question estimate "
    "is set to 0)"
)


def _p(x: float | None) -> float | None:
    """p-values keep significant digits: rounding 0.00004 to 4 decimals would print 0."""
    return None if x is None else float(f"{x:.4g}")


def _codes(labels: Sequence[Hashable]) -> tuple[list[Hashable], np.ndarray]:
    """Distinct labels in order of first appearance, and each row's index among them: labels
    need only be hashable (question ids may mix types, runs may be tuples), not sortable."""
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in labels), np.intp, len(labels))
    return list(index), codes


def _cluster_means(
    values: Sequence[float] | np.ndarray, clusters: Sequence[Hashable]
) -> tuple[list[Hashable], np.ndarray]:
    """Each cluster's mean, clusters in order of first appearance."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size != len(clusters):
        raise ValueError("one cluster label per value")
    names, codes = _codes(clusters)
    sizes = np.bincount(codes, minlength=len(names))
    return names, np.bincount(codes, weights=data, minlength=len(names)) / sizes


def _t(
    means: np.ndarray, n: int, what: str, null: float = 0.0, alternative: str = "two-sided"
) -> tuple[Interval, float | None]:
    """Mean of G cluster-level values minus ``null``, its 95% t interval on G-1 df, and the
    t test's p-value. With fewer than two distinct values there is no spread to scale a t by,
    so the estimate carries no interval and no p-value, and the method says why."""
    from scipy import stats  # scipy is heavy: loaded when an experiment is summarised

    g = int(means.size)
    if g == 0:
        return Interval(value=None, n=n, method=NO_VALUES, clusters=0), None
    centre = float(means.mean()) - null
    if g == 1:
        return Interval(value=centre, n=n, method=f"one {what}: no interval", clusters=1), None
    if np.ptp(means) == 0:
        reason = f"all {g} {what}s equal: no interval"
        return Interval(value=centre, n=n, method=reason, clusters=g), None
    # The interval is always the two-sided 95% one; only the p-value follows ``alternative``.
    two_sided = stats.ttest_1samp(means, null)
    ci = two_sided.confidence_interval(LEVEL)
    if alternative != "two-sided":
        two_sided = stats.ttest_1samp(means, null, alternative=alternative)
    p = float(two_sided.pvalue)
    method = f"t interval on {g} {what}s ({g - 1} df, scipy.stats.t)"
    low, high = float(ci.low) - null, float(ci.high) - null
    return Interval(value=centre, low=low, high=high, n=n, method=method, clusters=g), p


def cluster_mean(
    values: Sequence[float], clusters: Sequence[Hashable], *, unit: str = "question"
) -> Interval:
    """The mean of the cluster means, with a t interval on G-1 degrees of freedom.

    Each cluster counts once whatever its number of answers, because the cluster (question),
    not the answer, is what a claim generalises over; with few clusters the t quantile, not a
    bootstrap, is what keeps a 95% interval near 95%."""
    _, means = _cluster_means(values, clusters)
    return _t(means, len(values), f"{unit} mean")[0]


@dataclass(frozen=True)
class Comparison:
    """An estimated effect, its test, and its place in the plan: the one ``primary`` endpoint of
    a comparison is read unadjusted; every ``secondary`` one carries a Holm-adjusted p."""

    estimate: Interval
    p_value: float | None
    test_method: str
    role: str = "secondary"
    adjusted_p: float | None = None
    clusters: tuple[Hashable, ...] = ()  # the clusters the test rests on
    dropped: tuple[Hashable, ...] = ()  # clusters left out: present in only one arm
    # What is compared, for a summary's table: ``b - a`` on ``metric``.
    metric: str = ""
    a: str = ""
    b: str = ""

    def labelled(self, *, metric: str, a: str, b: str, role: str | None = None) -> Comparison:
        """This comparison named: ``b - a`` on ``metric``, in its ``role``."""
        return replace(self, metric=metric, a=a, b=b, role=role or self.role)

    def to_json(self) -> dict[str, Any]:
        estimate = self.estimate.to_json()
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "difference": estimate["mean"],
            "ci95": estimate["ci95"],
            "n": estimate["n"],
            "clusters": estimate.get("clusters"),
            "interval_method": estimate["method"],
            "p_value": _p(self.p_value),
            "test_method": self.test_method,
            "role": self.role,
            "adjusted_p": _p(self.adjusted_p),
            "dropped": [str(c) for c in self.dropped],
        }


def paired_difference(
    a_values: Sequence[float],
    a_clusters: Sequence[Hashable],
    b_values: Sequence[float],
    b_clusters: Sequence[Hashable],
    *,
    unit: str = "question",
) -> Comparison:
    """Mean of b minus mean of a, paired by cluster: per shared cluster, b's mean minus a's,
    then a one-sample t on those G differences (two-sided).

    Pairing removes what the arms share (the question's own effect), which an unpaired
    comparison leaves in the noise. A cluster seen by one arm only has no partner; it is
    dropped and listed, not silently averaged in."""
    a_names, a_means = _cluster_means(a_values, a_clusters)
    b_names, b_means = _cluster_means(b_values, b_clusters)
    b_index = {name: i for i, name in enumerate(b_names)}
    a_index = {name: i for i, name in enumerate(a_names)}
    shared = [name for name in a_names if name in b_index]
    dropped = tuple(c for c in a_names if c not in b_index) + tuple(
        c for c in b_names if c not in a_index
    )
    differences = np.array([b_means[b_index[c]] - a_means[a_index[c]] for c in shared])
    kept = set(shared)
    n = sum(c in kept for c in a_clusters) + sum(c in kept for c in b_clusters)
    estimate, p = _t(differences, n, f"{unit}-level difference")
    g = len(shared)
    test = (
        f"paired t test on {g} {unit}-level differences, two-sided (scipy.stats.ttest_1samp)"
        if p is not None
        else f"no test: {estimate.method}"
    )
    return Comparison(estimate, p, test, clusters=tuple(shared), dropped=dropped)


def one_sample_test(
    values: Sequence[float],
    clusters: Sequence[Hashable],
    null: float = 0.0,
    *,
    alternative: str = "two-sided",
    unit: str = "question",
) -> Comparison:
    """Is the mean of the cluster means different from ``null`` (e.g. an excess over the floor
    against 0)? The estimate is that mean minus ``null`` with its two-sided 95% t interval;
    ``alternative`` ("greater", "less") makes the p-value one-sided for a guard."""
    names, means = _cluster_means(values, clusters)
    estimate, p = _t(means, len(values), f"{unit} mean", null, alternative)
    test = (
        f"one-sample t test of {len(names)} {unit} means against {null:g}, {alternative} "
        "(scipy.stats.ttest_1samp)"
        if p is not None
        else f"no test: {estimate.method}"
    )
    return Comparison(estimate, p, test, clusters=tuple(names))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order): family-wise error held at alpha with no assumption
    about how the tests depend on each other, and never less powerful than Bonferroni."""
    if len(p_values) == 0:
        return []
    # statsmodels' multipletests(method="holm") is the reference (a test holds this to it), but
    # it calls gc.collect() on every Holm call: 0.16 s each with a summary's objects alive, so a
    # calibration run of a thousand summaries would spend minutes collecting garbage. The step-
    # down itself: sort, scale the i-th smallest by (m - i), carry the running maximum, cap at 1.
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return [float(x) for x in adjusted]


def adjust(
    comparisons: Mapping[str, Comparison], primary: Collection[str] | Callable[[str], bool]
) -> dict[str, Comparison]:
    """Label each comparison primary or secondary and Holm-adjust the secondaries together.

    ``primary`` names (or picks, by a predicate on the name) the endpoint the plan fixed in
    advance for each comparison: it is read at its own p, since it is the one question the
    comparison was run to answer. Every other p-value is secondary and is adjusted across all
    secondaries at once, so adding more looks cannot manufacture a finding. Comparisons with no
    p-value (too few questions) stay unadjusted and are not counted in the family."""
    if callable(primary):
        is_primary = primary
    else:
        unknown = set(primary) - set(comparisons)
        if unknown:
            raise ValueError(f"primary endpoints not among the comparisons: {sorted(unknown)}")
        is_primary = set(primary).__contains__
    secondary = [k for k, c in comparisons.items() if not is_primary(k) and c.p_value is not None]
    adjusted = dict(
        zip(secondary, holm([comparisons[k].p_value or 0.0 for k in secondary]), strict=True)
    )
    return {
        name: replace(c, role="primary", adjusted_p=None)
        if is_primary(name)
        else replace(c, role="secondary", adjusted_p=adjusted.get(name))
        for name, c in comparisons.items()
    }


def paired_power(
    sd_of_differences: float, effect: float, clusters: int, alpha: float = ALPHA
) -> float:
    """Power of the paired t test (two-sided) to detect a mean question-level difference
    ``effect`` with ``clusters`` questions, when those differences have this SD."""
    from statsmodels.stats.power import TTestPower

    if sd_of_differences <= 0 or clusters < 2:
        raise ValueError("power needs a positive SD and at least two questions")
    size = abs(effect) / sd_of_differences
    return float(TTestPower().power(effect_size=size, nobs=clusters, alpha=alpha))


def clusters_needed(sd: float, effect: float, power: float = 0.8, alpha: float = ALPHA) -> int:
    """The fewest questions at which the paired t test reaches ``power`` (rounded up)."""
    from statsmodels.stats.power import TTestPower

    if sd <= 0 or effect == 0:
        raise ValueError("the number of questions needs a positive SD and a non-zero effect")
    n = TTestPower().solve_power(effect_size=abs(effect) / sd, alpha=alpha, power=power)
    needed = max(2, math.ceil(float(np.asarray(n).item())))
    while paired_power(sd, effect, needed, alpha) < power:  # the root finder may land just short
        needed += 1
    return needed


def sd_from_components(
    between_question_var: float, within_question_var: float, samples_per_question: int
) -> float:
    """SD of one question's mean difference, from variance components:

        var(question mean difference) = between + within / samples

    ``between`` is how much the true difference varies from question to question, ``within``
    the variance of one unit-level difference inside a question. Where the arms' units are not
    paired by seed, ``within`` is the sum of the two arms' within variances."""
    if samples_per_question < 1 or between_question_var < 0 or within_question_var < 0:
        raise ValueError("variances must be non-negative and samples at least one")
    return math.sqrt(between_question_var + within_question_var / samples_per_question)


@dataclass(frozen=True)
class VarianceComponents:
    between: float  # variance of the true question means
    within: float  # variance of one value around its question's mean
    clusters: int
    n: int
    method: str = COMPONENTS


def variance_components(
    values: Sequence[float], clusters: Sequence[Hashable]
) -> VarianceComponents:
    """Between- and within-question variance from pilot data, for planning (not inference).

    Method of moments on the one-way ANOVA mean squares: within = MSW and between =
    (MSB - MSW) / n0, where n0 is the effective cluster size (the mean size when balanced)."""
    data = np.asarray(values, dtype=np.float64)
    names, means = _cluster_means(data, clusters)
    codes = _codes(clusters)[1]
    sizes = np.bincount(codes, minlength=len(names))
    g, n = len(names), int(data.size)
    if g < 2 or n <= g:
        raise ValueError("variance components need two questions and a repeat within one")
    msw = float(((data - means[codes]) ** 2).sum()) / (n - g)
    msb = float((sizes * (means - data.mean()) ** 2).sum()) / (g - 1)
    n0 = (n - float((sizes**2).sum()) / n) / (g - 1)
    return VarianceComponents(max(0.0, (msb - msw) / n0), msw, g, n)


@dataclass(frozen=True)
class PowerRow:
    """One line of a plan's power table."""

    effect: float
    clusters: int
    samples: int
    power: float
    clusters_for_80: int

    def to_json(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "questions": self.clusters,
            "samples": self.samples,
            "power": round(self.power, 3),
            "questions_for_80": self.clusters_for_80,
            "method": POWER,
        }


def power_row(
    components: VarianceComponents, effect: float, clusters: int, samples: int, alpha: float = ALPHA
) -> PowerRow:
    """Power of a design (questions x samples) for ``effect``, from pilot components."""
    sd = sd_from_components(components.between, components.within, samples)
    return PowerRow(
        effect,
        clusters,
        samples,
        paired_power(sd, effect, clusters, alpha),
        clusters_needed(sd, effect, 0.8, alpha),
    )


@dataclass(frozen=True)
class Term:
    """One term of the sequential split. ``null_mean`` and ``p_value`` are set for the term
    tested by permutation: its share under label noise alone, and how often noise matched it."""

    name: str
    df: int
    share: float | None
    null_mean: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class DesignShares:
    """Shares of the total sum of squares, terms in the order entered, plus the residual: they
    add up to 1. ``None`` shares (with ``note``) where the answers have no variance."""

    terms: tuple[Term, ...]
    residual: float | None
    residual_df: int
    total: float
    n: int
    method: str
    note: str | None = None

    def term(self, name: str) -> Term:
        return next(t for t in self.terms if t.name == name)

    def to_json(self, digits: int = 4) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, digits)

        terms = {
            t.name: {"share": r(t.share), "df": t.df}
            | ({} if t.null_mean is None else {"null_mean": r(t.null_mean), "p": _p(t.p_value)})
            for t in self.terms
        }
        residual = {"share": r(self.residual), "df": self.residual_df}
        return {"terms": terms, "residual": residual, "n": self.n, "method": self.method} | (
            {} if self.note is None else {"note": self.note}
        )


def _one_hot(codes: np.ndarray) -> np.ndarray:
    return np.eye(int(codes.max()) + 1)[codes]


def _extend(basis: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the span of ``basis`` and ``block`` (scipy.linalg.orth, an SVD):
    nested factors (runs inside questions) add only the directions they really add."""
    from scipy.linalg import orth

    return np.asarray(orth(np.hstack([basis, block])))


def _fitted(basis: np.ndarray, X: np.ndarray) -> float:
    """Sum of squares of X's projection onto the span of ``basis``."""
    return float(((basis.T @ X) ** 2).sum())


def _shuffles(
    labels: np.ndarray, within: Sequence[Hashable], times: int, seed: int
) -> list[np.ndarray]:
    """``times`` relabellings, each shuffling ``labels`` among rows sharing a ``within`` level:
    under no effect, labels are exchangeable only inside a run (seats share its seed)."""
    rng = np.random.default_rng(seed)
    groups = _codes(within)[1]
    slots = np.argsort(groups, kind="stable")  # rows grouped by level, in row order
    out = []
    for _ in range(times):
        order = np.lexsort((rng.random(groups.size), groups))  # grouped by level, random inside
        shuffled = labels.copy()
        shuffled[slots] = labels[order]
        out.append(shuffled)
    return out


def design_shares(
    X: Matrix,
    factors: Mapping[str, Sequence[Hashable]],
    permute: str,
    within: str,
    permutations: int = 199,
    seed: int = 0,
) -> DesignShares:
    """Split the embeddings' variance by the design: factors entered in the given order (e.g.
    question, run, family, persona), each credited only with what the earlier ones leave.

    Marginal shares on a confounded design overlap and do not add up; sequential (type I) sums
    of squares, by nested least-squares projections, are a true decomposition. A share is read
    against its label-noise baseline: ``permute``'s labels are shuffled within each level of
    ``within`` and its share recomputed; the p-value is (1 + #{shuffled >= observed}) / (B + 1)."""
    X = np.asarray(check_embeddings(X), dtype=np.float64)
    n = X.shape[0]
    if permute not in factors or within not in factors:
        raise ValueError("the permuted factor and the one it is shuffled within must be factors")
    if any(len(labels) != n for labels in factors.values()):
        raise ValueError("one label per embedding row for every factor")
    method = (
        f"sequential (type I) sums of squares of a multivariate linear model, terms in the order "
        f"{', '.join(factors)} (PERMANOVA on Euclidean distance of unit vectors); {permute} "
        f"against {permutations} shuffles of its labels within {within} (scipy.linalg.orth)"
    )
    basis = np.ones((n, 1)) / math.sqrt(max(n, 1))
    total = float((X**2).sum()) - _fitted(basis, X)  # sum of squares about the mean
    if n == 0 or total / n < NEAR_ZERO_VARIANCE:
        note = "undefined: the answers have near-zero variance (they are all but identical)"
        undefined = tuple(Term(name, 0, None) for name in factors)
        return DesignShares(undefined, None, 0, total, n, method, note)
    terms = []
    for name, labels in factors.items():
        before, fitted_before = basis, _fitted(basis, X)
        codes = _codes(labels)[1]
        basis = _extend(before, _one_hot(codes))
        share = (_fitted(basis, X) - fitted_before) / total
        term = Term(name, basis.shape[1] - before.shape[1], share)
        if name == permute:
            term = _permutation(term, X, before, codes, factors[within], total, permutations, seed)
        terms.append(term)
    residual = float(((X - basis @ (basis.T @ X)) ** 2).sum()) / total
    return DesignShares(tuple(terms), residual, n - basis.shape[1], total, n, method)


def _permutation(
    term: Term,
    X: np.ndarray,
    before: np.ndarray,
    codes: np.ndarray,
    within: Sequence[Hashable],
    total: float,
    times: int,
    seed: int,
) -> Term:
    """The term's share under shuffled labels, fitted after the same earlier terms."""
    fitted_before = _fitted(before, X)
    null = np.array(
        [
            (_fitted(_extend(before, _one_hot(shuffled)), X) - fitted_before) / total
            for shuffled in _shuffles(codes, within, times, seed)
        ]
    )
    # The identical relabelling reproduces the observed share only up to rounding: count ties.
    observed = term.share or 0.0
    exceed = int((null >= observed - 1e-12).sum())
    return replace(term, null_mean=float(null.mean()), p_value=(1 + exceed) / (times + 1))
