"""The engine's side of effective votes (issue 31): what a vote hands the estimator, and how
a tally rule turns the estimate into seat weights.

The estimator itself is the meter's (``council.meter.independence``), a layer above this one:
the app builds it (with the panel's stored profile) and gives it to ``Deliberation`` as
``independence``, the way it gives the similarity. A run convened without one records no
effective votes, and refuses the ``independence_weighted`` rule before its first call.

Rules that weigh seats by something other than their base weight register a weighting here
(``register_rule_weighting``); the tally asks for its rule's and gets base weights unchanged
for any rule that registered none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from council.protocols.spec import VoteStage
from council.records.run import Ballot, EffectiveVotes, Turn
from council.seats.seat import Seat


@dataclass(frozen=True)
class VoteEvidence:
    """What a vote's estimator may read: the counted stances, the run's replies so far and
    the seats' models."""

    run_id: str
    stage: str
    stances: dict[str, str]  # seat -> its counted stance (valid, not abstain)
    texts: dict[str, dict[str, str]]  # stage id -> seat -> its latest reply in that stage
    models: dict[str, str]  # seat -> the model it sits on ("provider/model")


Independence = Callable[[VoteEvidence], EffectiveVotes | None]


class VoteIndependence:
    """A mixin of ``Deliberation``: the effective votes of one vote stage's ballots."""

    run_id: str
    seats: dict[str, Seat]
    independence: Independence | None
    _latest: dict[str, list[Turn]]

    def effective_votes(
        self, stage: VoteStage, ballots: list[Ballot], turns: list[Turn]
    ) -> EffectiveVotes | None:
        if self.independence is None:
            return None
        texts = {
            stage_id: {t.seat: t.content for t in done if t.ok and t.content}
            for stage_id, done in self._latest.items()
        }
        texts[stage.id] = {t.seat: t.content for t in turns if t.ok and t.content}
        stances = {
            b.seat: b.stance for b in ballots if b.valid and b.stance and b.stance != "abstain"
        }
        models = {name: seat.model.model for name, seat in self.seats.items()}
        evidence = VoteEvidence(self.run_id, stage.id, stances, texts, models)
        return self.independence(evidence)


Weighting = Callable[[Mapping[str, Fraction], EffectiveVotes | None], dict[str, Fraction]]
_WEIGHTINGS: dict[str, Weighting] = {}
NEEDS_ESTIMATE: set[str] = set()  # rules that cannot tally without effective votes


def register_rule_weighting(rule: str, weighting: Weighting, *, needs_estimate: bool) -> None:
    _WEIGHTINGS[rule] = weighting
    if needs_estimate:
        NEEDS_ESTIMATE.add(rule)


def rule_weights(
    rule: str, base: Mapping[str, Fraction], effective: EffectiveVotes | None
) -> dict[str, Fraction]:
    """Each seat's weight in a tally by ``rule``: its base weight, unless the rule registered
    a weighting."""
    weighting = _WEIGHTINGS.get(rule)
    return weighting(base, effective) if weighting else dict(base)


def _independence_weighted(
    base: Mapping[str, Fraction], effective: EffectiveVotes | None
) -> dict[str, Fraction]:
    """Base weight x the seat's independence weight (``EffectiveVotes.weights``: row sums of
    the regularised inverse correlation matrix, clipped at 0, scaled to average 1 over the
    counted seats). A seat with no estimate (it cast no counted vote) keeps its base weight:
    it backs nothing, and the denominator counts it as every rule does."""
    weights = effective.weights if effective else {}
    return {
        seat: w * Fraction(weights[seat]).limit_denominator(10_000) if seat in weights else w
        for seat, w in base.items()
    }


register_rule_weighting("independence_weighted", _independence_weighted, needs_estimate=True)
