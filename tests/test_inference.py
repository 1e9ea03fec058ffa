"""Calibration of the meter's statistics: simulated experiments with known truth pushed through
the same inference code the summary uses. A test of a statistic is a claim about how often it
is wrong, so these count: false positives where there is no effect, intervals that miss a
known effect, and power against what the power calculation promised. Pure numpy, fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from council.meter import stats
from council.meter.inference import (
    HOLM,
    Comparison,
    adjust,
    cluster_mean,
    clusters_needed,
    design_shares,
    holm,
    one_sample_test,
    paired_difference,
    paired_power,
    power_row,
    sd_from_components,
    variance_components,
)
from council.meter.stats import Interval

# A realistic small experiment: 12 questions x 3 samples per arm; the question moves a
# distance by about 0.05 (shared by the arms, which answer the same questions), one answer's
# own noise is about 0.04. The question is then ~60% of a unit's variance.
G, M = 12, 3
QUESTION_SD, NOISE_SD = 0.05, 0.04
BASE = 0.6
CLUSTERS = np.repeat(np.arange(G), M)
EXPERIMENTS = 600


def arms(
    seed: int, *, effect: float = 0.0, interaction: float = 0.0, experiments: int = EXPERIMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Arms a and b of ``experiments`` simulated experiments, one row each: b is a plus
    ``effect``, plus a question-by-arm effect of SD ``interaction`` (how the arms' difference
    varies from question to question)."""
    rng = np.random.default_rng(seed)
    question = rng.normal(0, QUESTION_SD, (experiments, G))[:, CLUSTERS]
    by_question = rng.normal(0, interaction, (experiments, G))[:, CLUSTERS]
    a = BASE + question + rng.normal(0, NOISE_SD, (experiments, G * M))
    b = BASE + effect + question + by_question + rng.normal(0, NOISE_SD, (experiments, G * M))
    return a, b


def covers(estimate: Interval, truth: float) -> bool:
    assert estimate.low is not None and estimate.high is not None
    return estimate.low <= truth <= estimate.high


def rate(flags: list[bool]) -> float:
    return float(np.mean(flags))


def significant(comparison: Comparison) -> bool:
    assert comparison.p_value is not None
    return comparison.p_value < 0.05


# --- false positives and coverage -----------------------------------------------------------


def test_paired_difference_holds_its_false_positive_rate_with_no_effect() -> None:
    a, b = arms(1, interaction=0.02)
    fpr = rate(
        [
            significant(paired_difference(x, CLUSTERS, y, CLUSTERS))
            for x, y in zip(a, b, strict=True)
        ]
    )
    assert 0.02 <= fpr <= 0.08, fpr


def test_one_sample_test_holds_its_false_positive_rate_at_the_null() -> None:
    a, _ = arms(2)
    fpr = rate([significant(one_sample_test(x, CLUSTERS, BASE)) for x in a])
    assert 0.02 <= fpr <= 0.08, fpr


def test_intervals_cover_known_effects() -> None:
    a, b = arms(3, effect=0.03, interaction=0.02)
    paired = rate(
        [
            covers(paired_difference(x, CLUSTERS, y, CLUSTERS).estimate, 0.03)
            for x, y in zip(a, b, strict=True)
        ]
    )
    mean = rate([covers(cluster_mean(y, CLUSTERS), BASE + 0.03) for y in b])
    excess = rate([covers(one_sample_test(y, CLUSTERS, BASE).estimate, 0.03) for y in b])
    for coverage in (paired, mean, excess):
        assert 0.92 <= coverage <= 0.98, (paired, mean, excess)


def test_unit_level_bootstrap_that_ignores_questions_misleads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why the meter changed: the old intervals resampled answers as if independent. On the
    same experiments, the one-arm interval under-covers (questions make answers alike, so
    there is less information than the answer count says); the unpaired difference is too wide
    where arms share questions (power thrown away) and too narrow where the difference varies by
    question. The question-level t intervals above hold 95% in both cases."""
    monkeypatch.setattr(stats, "RESAMPLES", 999)  # enough to locate a coverage far from 95%
    a, b = arms(4, effect=0.03, experiments=200)
    one_arm = rate([covers(stats.mean_interval(x), BASE) for x in a])
    assert one_arm < 0.9, one_arm
    unpaired = [stats.difference_interval(x, y) for x, y in zip(a, b, strict=True)]
    paired = [
        paired_difference(x, CLUSTERS, y, CLUSTERS).estimate for x, y in zip(a, b, strict=True)
    ]
    assert rate([covers(e, 0.03) for e in unpaired]) > 0.98
    width = np.median([(u.high or 0) - (u.low or 0) for u in unpaired]) / np.median(
        [(p.high or 0) - (p.low or 0) for p in paired]
    )
    assert width > 1.3, width
    a, b = arms(5, effect=0.03, interaction=0.08, experiments=200)
    varying = rate(
        [covers(stats.difference_interval(x, y), 0.03) for x, y in zip(a, b, strict=True)]
    )
    assert varying < 0.9, varying
    paired_rate = rate(
        [
            covers(paired_difference(x, CLUSTERS, y, CLUSTERS).estimate, 0.03)
            for x, y in zip(a, b, strict=True)
        ]
    )
    assert 0.92 <= paired_rate <= 0.98, paired_rate


# --- edge cases and bookkeeping -------------------------------------------------------------


def test_degenerate_samples_say_why_they_have_no_interval() -> None:
    assert cluster_mean([], []).method == "no values"
    one = cluster_mean([0.5, 0.7], ["q1", "q1"])
    assert (one.value, one.low, one.clusters) == (pytest.approx(0.6), None, 1)
    assert one.method == "one question mean: no interval"
    equal = cluster_mean([0.5, 0.7, 0.6, 0.6], ["q1", "q1", "q2", "q2"])
    assert equal.low is None and equal.method == "all 2 question means equal: no interval"
    same = paired_difference([0.5, 0.6], ["q1", "q2"], [0.5, 0.6], ["q1", "q2"])
    assert same.p_value is None and same.test_method.startswith("no test: all 2")


def test_cluster_mean_weights_questions_not_answers() -> None:
    estimate = cluster_mean([0.0, 0.0, 0.0, 0.0, 1.0], ["a", "a", "a", "a", "b"])
    assert estimate.value == pytest.approx(0.5)
    assert (estimate.n, estimate.clusters) == (5, 2)
    assert estimate.method == "t interval on 2 question means (1 df, scipy.stats.t)"
    assert estimate.to_json()["clusters"] == 2


def test_paired_difference_pairs_by_question_and_lists_the_unpaired() -> None:
    a = paired_difference(
        [0.1, 0.2, 0.3, 0.9],
        ["q1", "q2", "q3", "only-a"],
        [0.2, 0.35, 0.38, 0.0],
        ["q3", "q1", "q2", "only-b"],
    )
    # Differences per question: q1 0.25, q2 0.18, q3 -0.1.
    assert a.estimate.value == pytest.approx((0.25 + 0.18 - 0.1) / 3)
    assert a.clusters == ("q1", "q2", "q3") and a.dropped == ("only-a", "only-b")
    assert a.estimate.n == 6 and a.estimate.clusters == 3
    assert a.test_method.startswith("paired t test on 3 question-level differences")
    assert a.to_json()["dropped"] == ["only-a", "only-b"]


def test_one_sample_test_is_one_sided_on_request() -> None:
    values, clusters = [0.61, 0.63, 0.6, 0.64, 0.62, 0.66], [1, 1, 2, 2, 3, 3]
    two = one_sample_test(values, clusters, 0.6)
    above = one_sample_test(values, clusters, 0.6, alternative="greater")
    assert above.p_value == pytest.approx((two.p_value or 0) / 2)
    assert above.estimate == two.estimate  # the interval stays the two-sided 95% one
    assert above.test_method.startswith(
        "one-sample t test of 3 question means against 0.6, greater"
    )


def test_estimate_json_is_unchanged_for_unit_level_intervals() -> None:
    assert "clusters" not in Interval(value=0.5, low=0.4, high=0.6, n=10, method="m").to_json()


def test_holm_and_the_primary_secondary_split() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 30):
        p = np.concatenate([rng.uniform(size=size), [0.5] * (size % 3)])  # ties too
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)

    def comparison(p: float | None) -> Comparison:
        return Comparison(Interval(value=0.1, low=0.0, high=0.2, n=10, method="m"), p, "t")

    found = adjust(
        {
            "excess": comparison(0.01),
            "b": comparison(0.04),
            "c": comparison(0.03),
            "tiny": comparison(None),
        },
        primary={"excess"},
    )
    assert found["excess"].role == "primary" and found["excess"].adjusted_p is None
    assert [found[k].adjusted_p for k in ("b", "c")] == pytest.approx([0.06, 0.06])
    assert found["tiny"].role == "secondary" and found["tiny"].adjusted_p is None
    assert found["b"].to_json()["adjusted_p"] == 0.06 and "statsmodels" in HOLM
    by_rule = adjust(found, primary=lambda name: name.startswith("ex"))
    assert by_rule["excess"].role == "primary" and by_rule["b"].adjusted_p == pytest.approx(0.06)
    with pytest.raises(ValueError, match="not among"):
        adjust(found, primary={"missing"})


# --- power ----------------------------------------------------------------------------------


def test_clusters_needed_reaches_the_power_it_promises() -> None:
    for sd, effect in [(0.04, 0.02), (0.1, 0.034), (0.03, 0.05)]:
        n = clusters_needed(sd, effect)
        assert paired_power(sd, effect, n) >= 0.8
        assert n == 2 or paired_power(sd, effect, n - 1) < 0.8


def test_computed_power_matches_simulated_power() -> None:
    """Plan from components, then run the planned experiment many times: the paired test should
    reject about as often as the plan said."""
    between, noise, effect, samples = 0.02**2, 0.04, 0.02, 3
    # Unit-level differences of two independent answers: within variance is twice one answer's.
    sd = sd_from_components(between, 2 * noise**2, samples)
    g = clusters_needed(sd, effect)
    promised = paired_power(sd, effect, g)
    rng = np.random.default_rng(6)
    clusters = np.repeat(np.arange(g), samples)
    rejected = []
    for _ in range(EXPERIMENTS):
        a = rng.normal(0, noise, g * samples)
        b = effect + rng.normal(0, 0.02, g)[clusters] + rng.normal(0, noise, g * samples)
        rejected.append(significant(paired_difference(a, clusters, b, clusters)))
    assert abs(rate(rejected) - promised) <= 0.07, (rate(rejected), promised, g)


def test_variance_components_recover_the_simulated_ones() -> None:
    a, b = arms(7, experiments=300)
    found = [variance_components(x, CLUSTERS) for x in a]
    assert np.mean([c.between for c in found]) == pytest.approx(QUESTION_SD**2, rel=0.1)
    assert np.mean([c.within for c in found]) == pytest.approx(NOISE_SD**2, rel=0.05)
    # On unit-level differences the shared question effect cancels: nothing between.
    pilot = variance_components(b[0] - a[0], CLUSTERS)
    row = power_row(pilot, effect=0.03, clusters=G, samples=M)
    assert row.clusters_for_80 == clusters_needed(
        sd_from_components(pilot.between, pilot.within, M), 0.03
    )
    assert row.to_json()["questions"] == G and 0 < row.power < 1
    with pytest.raises(ValueError):
        variance_components([0.1, 0.2], ["q1", "q2"])


# --- the variance split ---------------------------------------------------------------------

QUESTIONS, RUNS, PERSONAS, DIMENSION = 6, 2, 4, 16


def embeddings(
    rng: np.random.Generator, persona: float = 0.0
) -> tuple[np.ndarray, dict[str, list[object]]]:
    """Unit vectors for QUESTIONS x RUNS councils of PERSONAS seats: a question effect, a run
    effect (seats share the run's seed), noise, and a persona effect of size ``persona``."""
    question = rng.normal(0, 0.5, (QUESTIONS, DIMENSION))
    voice = rng.normal(0, persona, (PERSONAS, DIMENSION))
    rows, labels = [], {"question": [], "run": [], "persona": []}  # type: ignore[var-annotated]
    for q in range(QUESTIONS):
        for r in range(RUNS):
            run = rng.normal(0, 0.3, DIMENSION)
            for p in range(PERSONAS):
                v = 1 + question[q] + run + voice[p] + rng.normal(0, 0.4, DIMENSION)
                rows.append(v / np.linalg.norm(v))
                for name, label in (("question", q), ("run", (q, r)), ("persona", f"p{p}")):
                    labels[name].append(label)
    return np.array(rows), labels


def test_persona_share_is_calibrated_against_label_noise() -> None:
    rng = np.random.default_rng(8)
    found = [
        design_shares(*embeddings(rng), permute="persona", within="run", permutations=99, seed=s)
        for s in range(250)
    ]
    persona = [f.term("persona") for f in found]
    rejected = rate([(t.p_value or 0) <= 0.05 for t in persona])
    assert 0.02 <= rejected <= 0.08, rejected
    observed = np.mean([t.share or 0 for t in persona])
    baseline = np.mean([t.null_mean or 0 for t in persona])
    assert observed == pytest.approx(baseline, rel=0.05)
    assert observed > 0.01  # label noise alone earns a share: why it is shown beside it
    for f in found:
        assert sum(t.share or 0 for t in f.terms) + (f.residual or 0) == pytest.approx(1, abs=1e-9)
    assert [(t.name, t.df) for t in found[0].terms] == [("question", 5), ("run", 6), ("persona", 3)]
    assert found[0].residual_df == QUESTIONS * RUNS * PERSONAS - 15


def test_a_real_persona_effect_is_found() -> None:
    rng = np.random.default_rng(9)
    for seed in range(5):
        found = design_shares(*embeddings(rng, persona=0.15), "persona", "run", 99, seed)
        persona = found.term("persona")
        assert persona.p_value == 0.01 and (persona.share or 0) > 1.5 * (persona.null_mean or 0)
        assert found.to_json()["terms"]["persona"]["p"] == 0.01


def test_design_shares_match_statsmodels_sequential_anova() -> None:
    """The projections agree with statsmodels' type I ANOVA, summed over embedding dimensions,
    on an unbalanced design where the family and persona overlap."""
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(10)
    X, labels = embeddings(rng, persona=0.1)
    keep = rng.random(len(X)) > 0.2  # unbalanced
    X = X[keep]
    factors = {
        "question": [q for q, k in zip(labels["question"], keep, strict=True) if k],
        "family": list(rng.integers(0, 2, int(keep.sum()))),  # the model under each seat
        "persona": [p for p, k in zip(labels["persona"], keep, strict=True) if k],
    }
    found = design_shares(X, factors, "persona", "question", permutations=9)
    sums = np.zeros(4)
    for column in X.T:
        data = pd.DataFrame({"y": column, **{k: [str(v) for v in vs] for k, vs in factors.items()}})
        table = anova_lm(ols("y ~ C(question) + C(family) + C(persona)", data).fit(), typ=1)
        sums += table["sum_sq"].to_numpy()
    shares = sums / sums.sum()
    assert [t.share for t in found.terms] == pytest.approx(list(shares[:3]), abs=1e-9)
    assert found.residual == pytest.approx(shares[3], abs=1e-9)
    assert [t.df for t in found.terms] == [5, 1, 3]


def test_a_factor_nested_in_an_earlier_one_adds_only_its_own_directions() -> None:
    """Each persona always on one model family: persona is credited with the 2 directions its
    family did not already take, and the split still adds up (marginal shares would overlap)."""
    X, labels = embeddings(np.random.default_rng(11), persona=0.1)
    factors = {**labels, "family": [int(p[1]) % 2 for p in labels["persona"]]}
    order = {k: factors[k] for k in ("question", "run", "family", "persona")}
    found = design_shares(X, order, "persona", "run", permutations=19)
    assert [t.df for t in found.terms] == [5, 6, 1, 2]
    assert sum(t.share or 0 for t in found.terms) + (found.residual or 0) == pytest.approx(1)
    assert "question, run, family, persona" in found.method


def test_design_shares_with_no_variance_say_so() -> None:
    X = np.tile(np.eye(4)[0], (8, 1))
    labels = {"run": [i // 4 for i in range(8)], "persona": [i % 4 for i in range(8)]}
    found = design_shares(X, labels, "persona", "run")
    assert found.residual is None and found.note is not None and "near-zero" in found.note


def test_labels_need_only_be_hashable() -> None:
    """Runs are often (question, sample) tuples and question ids may mix types."""
    X, labels = embeddings(np.random.default_rng(12))
    factors = {
        "question": [str(q) if q % 2 else q for q in labels["question"]],
        "seat": [(r, p) for r, p in zip(labels["run"], labels["persona"], strict=True)],
    }
    found = design_shares(X, factors, permute="seat", within="question", permutations=19)
    assert found.term("seat").p_value is not None
    assert cluster_mean([0.1, 0.2, 0.4], [1, "1", (1,)]).clusters == 3


def test_one_interval_type_reads_back_both_of_its_json_forms() -> None:
    from council.meter.activations.stats import auc_interval
    from council.meter.intervals import Interval as Recorded
    from council.meter.stats import Interval as Bootstrapped

    assert Interval is Recorded is Bootstrapped
    estimate = Interval(value=0.51234, low=0.4, high=0.6, n=10, method="m", clusters=5)
    assert estimate.to_json() == {
        "mean": 0.5123,
        "ci95": [0.4, 0.6],
        "n": 10,
        "method": "m",
        "clusters": 5,
    }
    assert Interval.model_validate(estimate.to_json()).ci95 == (0.4, 0.6)
    auc = auc_interval([2.0, 3.0, 4.0], [0.0, 1.0, 2.5])
    assert Interval.model_validate(auc.bounds_json()) == auc
    assert auc.bounds_json()["estimate"] == auc.value and auc.n == 6
