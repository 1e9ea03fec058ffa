"""Parsing votes out of free text, and tallying them by a rule.

Models are asked to end with ``STANCE | CONFIDENCE | DEALBREAKER``. Real replies add prose,
Markdown, labels ("Stance: yes"), percentages, or forget the line entirely; the parser takes the
last line that looks like a vote, falls back to labelled lines, and records what it had to guess
in ``Ballot.problem``. A reply it cannot read is an invalid ballot, never an exception. A seat
whose model takes a JSON schema answers a vote with the ballot as JSON (``vote_schema``): it is
read from its fields (``Ballot.read == "structured"``), and the text line is the fallback
(``"parsed"``).

Stances are normalised (case, punctuation, synonyms: "Agreed." is yes, "pass" is abstain) and
``abstain`` is a stance of its own. Confidence words map through ``CONFIDENCE_WORDS``.

Every rule divides by every seat asked: a seat that abstained or whose ballot could not be read
did not support the winner, so it counts in the denominator (the design the high-council
protocols reproduce). Each seat has a base weight (1, or 1.5 for a panel's domain seat).

- ``confidence_weighted``: an option's weight is the sum of base x confidence of the seats
  choosing it; consensus when the winner's weight >= threshold x the sum of base weights.
- ``majority``: the same with confidence 1; consensus when the winner has more than half.
- ``supermajority``: as majority, consensus at >= threshold.
- ``independence_weighted``: as supermajority, each seat's base weight multiplied by its
  independence weight (``council.engine.independence``): seats that vote as one count as
  about one.
- ``borda``: points by position; agreement is the share of first places among seats asked.
- numeric (Delphi): the median; agreement is the share of seats asked within the tolerance.

Thresholds and weights are compared as exact fractions (``0.667`` is read as 2/3 when that is
what it rounds), so two of three equal votes meet a 2/3 threshold.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

from council.engine.independence import rule_weights
from council.engine.structured import json_vote, structured_fields
from council.protocols.ballots import MAX_STANCE_WORDS, BallotScale, ballot_scale
from council.protocols.spec import VoteStage
from council.records.run import Ballot, EffectiveVotes, Tally, VoteOutcome

_VOTE_LINE = re.compile(
    r"^[\s>*_`#-]*(?:stance\s*[:=]\s*)?(?P<stance>[^|\n]+?)\s*\|\s*"
    r"(?:confidence\s*[:=]\s*)?(?P<confidence>[^|\n]*?)\s*"
    r"(?:\|\s*(?:deal\s*-?breaker\s*[:=]\s*)?(?P<dealbreaker>[^|\n]*?))?[\s*_`]*$",
    re.IGNORECASE | re.MULTILINE,
)
_LABELLED = {
    name: re.compile(rf"^[\s>*_`#-]*{name}\s*[:=]\s*\**\s*(?P<value>[^\n|]+)", re.I | re.M)
    for name in ("stance", "confidence", "dealbreaker")
}
_HEADER = re.compile(r"^\W*stance\W*$", re.I)
# Confidence words and what they weigh: the one place this mapping is written.
CONFIDENCE_WORDS = {
    "very high": 1.0, "high": 1.0, "certain": 1.0, "medium": 0.75, "med": 0.75,
    "moderate": 0.75, "mid": 0.75, "very low": 0.25, "low": 0.5,
}  # fmt: skip
ABSTAIN = "abstain"
# Words that mean a canonical stance; a fixed option list uses the ones among its options.
SYNONYMS = {
    "yes": ("yes", "yeah", "yep", "agree", "agreed", "support", "in favour", "in favor",
            "approve", "for", "aye", "accept"),
    "no": ("no", "nope", "disagree", "oppose", "against", "reject", "nay", "decline"),
    ABSTAIN: ("abstain", "abstention", "pass", "no vote", "no stance", "undecided"),
    "depends": ("depends", "it depends", "conditional", "conditionally", "mixed"),
}  # fmt: skip
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def vote_instruction(stage: VoteStage) -> str:
    """The line a seat is asked to end with, in the words of the stage's ballot scale."""
    ranked = stage.rule == "borda"
    return ballot_scale(stage.ballot).instruction(stage.options, stage.numeric, ranked)


def missing_line_instruction(stage: VoteStage, problem: str | None) -> str:
    """What a seat whose vote line could not be read is asked: that line, and only it."""
    why = f" ({problem})" if problem else ""
    return (
        f"Your reply has no readable vote line{why}. {vote_instruction(stage)} Reply with that "
        "one line only: do not repeat or change your argument."
    )


def _clean(text: str) -> str:
    return re.sub(r"[*_`\"']", "", text).strip().strip(".").strip()


def parse_confidence(text: str | None) -> tuple[float, str | None]:
    """``'0.8'``, ``'80%'``, ``'8/10'``, ``'high'`` -> a number in 0..1 (0.5 when unreadable)."""
    if not text or not text.strip():
        return 0.5, "no confidence given (0.5 assumed)"
    raw = _clean(text).lower()
    fraction = re.match(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", raw)
    if fraction and float(fraction.group(2)) > 0:
        return min(1.0, float(fraction.group(1)) / float(fraction.group(2))), None
    for word, value in sorted(CONFIDENCE_WORDS.items(), key=lambda item: -len(item[0])):
        if raw.startswith(word):
            return value, None
    number = re.search(r"\d+(?:\.\d+)?", raw)
    if number is None:
        return 0.5, f"unreadable confidence '{text.strip()}' (0.5 assumed)"
    value = float(number.group())
    if "%" in raw or value > 10:
        value /= 100
    elif value > 1:
        value /= 10
    return max(0.0, min(1.0, value)), None


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s-]", " ", text.lower()).split())


def canonical(text: str) -> str:
    """A stance as compared: lower case, no punctuation, synonyms folded ("Agreed." -> yes)."""
    cleaned = _plain(text)
    for stance, words in SYNONYMS.items():
        if cleaned in words:
            return stance
    return cleaned


def match_option(text: str, options: list[str]) -> str | None:
    """The option a stance names: exact, then by synonym, then the only option mentioned."""
    cleaned = _clean(text).lower()
    for option in options:
        if cleaned == option.lower():
            return option
    folded = canonical(text)
    for option in options:
        if canonical(option) == folded:
            return option
    mentioned = [o for o in options if re.search(rf"\b{re.escape(o.lower())}\b", cleaned)]
    return mentioned[0] if len(mentioned) == 1 else None


def _find_vote(text: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(stance, confidence, dealbreaker, problem) from the last vote-like line or labels."""
    matches = [m for m in _VOTE_LINE.finditer(text) if not _HEADER.match(m.group("stance"))]
    if matches:
        last = matches[-1]
        return last.group("stance"), last.group("confidence"), last.group("dealbreaker"), None
    labelled = {k: p.findall(text) for k, p in _LABELLED.items()}
    if labelled["stance"]:
        confidence = labelled["confidence"][-1] if labelled["confidence"] else None
        dealbreaker = labelled["dealbreaker"][-1] if labelled["dealbreaker"] else None
        return labelled["stance"][-1], confidence, dealbreaker, "no vote line; read labelled fields"
    return None, None, None, "no vote line found"


def _read_confidence(
    scale: BallotScale, text: str | None
) -> tuple[float | None, str | None, str | None]:
    """(factor, level word, problem); a None factor makes the ballot unreadable."""
    if scale.confidence == "levels":
        level = scale.level(_clean(text or ""))
        if level is None:
            given = f"'{_clean(text)}'" if text and _clean(text) else "none"
            return None, None, f"confidence {given} is not one of {'|'.join(scale.levels)}"
        return scale.levels[level], level, None
    if scale.assumed_confidence is None and not (text and text.strip()):
        return None, None, "no confidence given"
    value, problem = parse_confidence(text)
    return value, None, problem


def _read_dealbreaker(scale: BallotScale, text: str | None) -> tuple[str | None, str | None]:
    """(dealbreaker, problem): ``harmful`` takes yes or no only (yes is kept as "yes")."""
    cleaned = _clean(text or "")
    if scale.dealbreaker == "harmful":
        word = cleaned.lower()
        if word in ("yes", "no"):
            return ("yes" if word == "yes" else None), None
        return None, f"dealbreaker '{cleaned or 'none'}' is not yes or no"
    return (cleaned if cleaned and cleaned.lower() not in ("none", "no", "n/a") else None), None


def parse_ballot(seat: str, text: str | None, stage: VoteStage) -> Ballot:
    """One seat's ballot read by its stage's scale; an unreadable one is invalid, never an
    error, and says why (a scale that asks again reads the reply with the answer added). A
    reply that is (or ends in) a JSON ballot is read from its fields, ``read="structured"``;
    unless those fields make a valid ballot, the reply's text line is read as well, and the
    better of the two is kept (``read="parsed"`` for the line). With neither, a JSON ballot cut
    off by its token cap is read from the fields written before the cut."""
    if not text or not text.strip():
        return Ballot(seat=seat, valid=False, problem="no reply")
    whole = structured_fields(text)
    structured = _structured(seat, text, stage, whole)
    if structured is not None and structured.valid:
        return structured
    parsed = _read_ballot(seat, text, stage, _find_vote(text), None)
    if parsed.valid:
        return parsed.model_copy(update={"read": "parsed"})
    if whole is None:  # no line either: a JSON ballot its token cap cut short after its stance
        structured = _structured(seat, text, stage, structured_fields(text, cut=True))
    # The JSON's own problem says more than the missing line.
    return structured if structured is not None else parsed.model_copy(update={"read": "parsed"})


def _structured(
    seat: str, text: str, stage: VoteStage, fields: dict[str, Any] | None
) -> Ballot | None:
    if fields is None:
        return None
    ballot = _read_ballot(seat, text, stage, json_vote(fields), fields.get("reason"))
    return ballot.model_copy(update={"read": "structured"})


Found = tuple[str | None, str | None, str | None, str | None]


def _read_ballot(seat: str, text: str, stage: VoteStage, found: Found, reason: Any) -> Ballot:
    """A ballot from (stance, confidence, dealbreaker, problem) as found in the reply."""
    scale = ballot_scale(stage.ballot)
    stance_text, confidence_text, dealbreaker, problem = found
    options = stage.options or []
    if (
        stance_text is None
        and scale.from_prose
        and options
        and not stage.numeric
        and stage.rule != "borda"
    ):
        # Last resort: a reply that names exactly one option in its final sentence.
        tail = re.split(r"(?<=[.!?])\s+", text.strip())[-1]
        stance_text = tail if match_option(tail, options) else None
        problem = "no vote line; stance read from the last sentence" if stance_text else problem
    if stance_text is None:
        return Ballot(seat=seat, valid=False, problem=problem)
    confidence, level, confidence_problem = _read_confidence(scale, confidence_text)
    deal, deal_problem = _read_dealbreaker(scale, dealbreaker)
    unreadable = "; ".join(p for p in (confidence_problem, deal_problem) if p)
    if confidence is None or deal_problem:
        return Ballot(seat=seat, valid=False, raw_stance=_clean(stance_text), problem=unreadable)
    problem = "; ".join(p for p in (problem, confidence_problem) if p) or None
    reason = str(reason).strip()[:200] if reason else _reason(text)
    common: dict[str, Any] = {
        "seat": seat,
        "confidence": confidence,
        "confidence_label": level,
        "dealbreaker": deal,
        "reason": reason or None,
        "raw_stance": _clean(stance_text),
    }
    return _ballot_for(stage, stance_text, common, problem)


def _ballot_for(
    stage: VoteStage, stance_text: str, common: dict[str, Any], problem: str | None
) -> Ballot:
    """The stance read against the stage: abstain, a number, a ranking, an option, or free."""
    options = stage.options or []
    if canonical(stance_text) == ABSTAIN:
        return Ballot(**common, valid=True, stance=ABSTAIN, problem=problem)
    if stage.numeric:
        number = _NUMBER.search(stance_text)
        if number is None:
            return Ballot(
                **common, valid=False, problem=f"no number in stance '{_clean(stance_text)}'"
            )
        value = float(number.group().replace(",", ""))
        return Ballot(**common, valid=True, stance=f"{value:g}", value=value, problem=problem)
    if stage.rule == "borda":
        ranked = [match_option(part, options) for part in re.split(r">|,|;|\n", stance_text)]
        order = list(dict.fromkeys(o for o in ranked if o))
        if not order:
            return Ballot(
                **common, valid=False, problem=f"no option in ranking '{_clean(stance_text)}'"
            )
        if len(order) < len(options):
            problem = "; ".join(p for p in (problem, "partial ranking") if p)
        return Ballot(**common, valid=True, stance=order[0], order=order, problem=problem)
    if options:
        option = match_option(stance_text, options)
        if option is None:
            return Ballot(
                **common,
                valid=False,
                problem=f"stance '{_clean(stance_text)}' is not one of {', '.join(options)}",
            )
        return Ballot(**common, valid=True, stance=option, problem=problem)
    if not canonical(stance_text):  # marks with no word ("][", "--"): no position at all
        return Ballot(**common, valid=False, problem=f"stance '{stance_text.strip()}' has no words")
    if len(stance_text.split()) > MAX_STANCE_WORDS:  # prose caught by the pattern, not a stance
        return Ballot(
            **common,
            valid=False,
            problem=f"stance '{_clean(stance_text)[:60]}' is not a position in a few words",
        )
    return Ballot(**common, valid=True, stance=canonical(stance_text), problem=problem)


def _reason(text: str) -> str | None:
    """The last sentence of prose before the vote line: the ballot's argument, in short."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    prose = [line for line in lines if "|" not in line and not _LABELLED["stance"].match(line)]
    if not prose:
        return None
    sentence = re.split(r"(?<=[.!?])\s+", prose[-1])[-1]
    return sentence[:200] or None


STANCE_MERGE = 0.85  # free stances at least this similar are one stance


def merge_stances(
    ballots: list[Ballot], similarity: Callable[[str, str], float] | None
) -> tuple[list[Ballot], dict[str, str]]:
    """Free stances that say the same thing under different words become one: each is folded
    into a more common stance it is at least ``STANCE_MERGE`` similar to. Returns the ballots
    and every merge made (as written -> canonical), synonym folds included."""
    merged = {  # synonyms folded ("Agreed" -> yes); case and punctuation alone are no merge
        b.raw_stance: b.stance
        for b in ballots
        if b.valid and b.raw_stance and b.stance and _plain(b.raw_stance) != b.stance
    }
    counts = Counter(b.stance for b in ballots if b.valid and b.stance and b.stance != ABSTAIN)
    canon: dict[str, str] = {}
    kept: list[str] = []
    for stance, _ in sorted(counts.items(), key=lambda item: -item[1]):
        target = next(
            (k for k in kept if similarity and similarity(stance, k) >= STANCE_MERGE), None
        )
        if target is None:
            kept.append(stance)
        else:
            canon[stance] = target
    out = []
    for ballot in ballots:
        if ballot.stance in canon:
            merged[ballot.raw_stance or ballot.stance] = canon[ballot.stance]
            ballot = ballot.model_copy(update={"stance": canon[ballot.stance]})
        out.append(ballot)
    return out, {raw: stance for raw, stance in merged.items() if raw and stance}


@lru_cache(maxsize=1024)  # a handful of thresholds and confidences recur in every tally
def _exact(value: float) -> Fraction:
    """A float as the simplest fraction within half a thousandth of it: 0.667 -> 2/3,
    0.75 -> 3/4. Thresholds written to three decimals mean the fraction they round."""
    exact = Fraction(value)
    for denominator in range(1, 1001):
        simple = exact.limit_denominator(denominator)
        if abs(simple - exact) <= Fraction(1, 2000):
            return simple
    return exact.limit_denominator(1000)


def tally_votes(
    stage: VoteStage,
    ballots: list[Ballot],
    round_number: int = 0,
    weights: Mapping[str, float] | None = None,
    similarity: Callable[[str, str], float] | None = None,
    effective: EffectiveVotes | None = None,
) -> Tally:
    """Count ballots by the stage's rule (see the module's notes: every rule divides by every
    seat asked); ``weights`` gives seats their base weight (default 1); free stances merge by
    ``similarity`` (see ``merge_stances``). The tally records each seat's base weight, the
    weight an option needs, the outcome (``VoteOutcome``) and ``effective`` (how many
    independent votes the seats carried), which a rule may weigh seats by."""
    merged: dict[str, str] = {}
    if not stage.options and not stage.numeric:
        ballots, merged = merge_stances(ballots, similarity)
    base_weight = {b.seat: _exact((weights or {}).get(b.seat, 1.0)) for b in ballots}
    base_weight = rule_weights(stage.rule, base_weight, effective)
    denominator = sum(base_weight.values(), Fraction(0))
    uncounted = sum((base_weight[b.seat] for b in ballots if not b.valid), Fraction(0))
    valid = [b for b in ballots if b.valid and b.stance != ABSTAIN]
    scale = ballot_scale(stage.ballot)
    base: dict[str, Any] = {
        "stage": stage.id,
        "round": round_number,
        "kind": "vote",
        "ballots": ballots,
        "invalid": [b.seat for b in ballots if not b.valid],
        "threshold": _threshold(stage),
        "abstained": [b.seat for b in ballots if b.valid and b.stance == ABSTAIN],
        "denominator": float(denominator),
        "merged": merged,
        "weights": {seat: float(w) for seat, w in base_weight.items()},
        "needed": round(float(_exact(_threshold(stage)) * denominator), 4),
        "ballot": scale.name,
        "dealbreaker": scale.dealbreaker,
        "effective_votes": effective,
    }
    if not valid or not denominator:
        could = bool(denominator) and _reached(stage, uncounted / denominator)
        return Tally(
            **base,
            rule=stage.rule,
            outcome="inconclusive" if could else "split",
            split=not could and bool(ballots),
        )
    if stage.numeric:
        return _tally_numeric(stage, valid, base, len(ballots))
    scores: dict[str, Fraction] = defaultdict(Fraction)
    if stage.rule == "borda":
        size = len(stage.options or [])
        for ballot in valid:
            for position, option in enumerate(ballot.order):
                scores[option] += size - 1 - position
        firsts = Counter(b.order[0] for b in valid)
    else:
        for ballot in valid:
            factor = _exact(ballot.confidence) if stage.rule == "confidence_weighted" else 1
            scores[ballot.stance or ""] += base_weight[ballot.seat] * factor
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    tied = [option for option, score in ranked if score == ranked[0][1]]
    winner = None if len(tied) > 1 else ranked[0][0]
    if stage.rule == "borda":
        share = Fraction(firsts[winner], len(ballots)) if winner else Fraction(0)
        # Unread ballots could each have put the leader first.
        best = Fraction(max(firsts.values()) + len(base["invalid"]), len(ballots))
    else:
        share = scores[winner] / denominator if winner else Fraction(0)
        best = (ranked[0][1] + uncounted) / denominator
    consensus = winner is not None and _reached(stage, share)
    outcome = _outcome(consensus, _reached(stage, best))
    return Tally(
        **base,
        rule=stage.rule,
        winner=winner,
        agreement=round(float(share), 4),
        consensus=consensus,
        split=outcome == "split",
        outcome=outcome,
        tied=tied if len(tied) > 1 else [],
        dissenters=[b.seat for b in valid if b.stance != winner],
        scores={k: round(float(v), 4) for k, v in ranked},
        arguments=_strongest_arguments(valid, base_weight),
    )


def _outcome(consensus: bool, uncounted_could_decide: bool) -> VoteOutcome:
    """consensus; else inconclusive when the uncounted ballots could have made the leading
    option clear the bar; else a split (see ``council.records.run.VoteOutcome``)."""
    if consensus:
        return "consensus"
    return "inconclusive" if uncounted_could_decide else "split"


def _strongest_arguments(valid: list[Ballot], weight: Mapping[str, Fraction]) -> dict[str, str]:
    """Each option's reason from its most confident, heaviest ballot."""
    best: dict[str, Ballot] = {}
    for ballot in valid:
        current = best.get(ballot.stance or "")
        key = weight[ballot.seat] * _exact(ballot.confidence)
        if ballot.reason and (
            current is None or key > weight[current.seat] * _exact(current.confidence)
        ):
            best[ballot.stance or ""] = ballot
    return {option: ballot.reason or "" for option, ballot in best.items()}


def _threshold(stage: VoteStage) -> float:
    return 0.5 if stage.rule == "majority" else stage.threshold


def _reached(stage: VoteStage, share: Fraction) -> bool:
    # A majority is strictly more than half; other rules need at least their threshold.
    if stage.rule == "majority":
        return share > Fraction(1, 2)
    return share >= _exact(stage.threshold)


def _tally_numeric(
    stage: VoteStage, valid: list[Ballot], base: dict[str, Any], asked: int
) -> Tally:
    values = sorted(b.value for b in valid if b.value is not None)
    median = statistics.median(values)
    quartiles = statistics.quantiles(values, n=4) if len(values) >= 2 else [median] * 3
    band = stage.tolerance * abs(median) if median else stage.tolerance
    agreeing = [b for b in valid if b.value is not None and abs(b.value - median) <= band]
    share = Fraction(len(agreeing), asked)
    could = Fraction(len(agreeing) + len(base["invalid"]), asked)  # had the unread agreed
    outcome = _outcome(_reached(stage, share), _reached(stage, could))
    return Tally(
        **base,
        rule="median",
        winner=f"{median:g}",
        agreement=round(float(share), 4),
        consensus=outcome == "consensus",
        split=outcome == "split",
        outcome=outcome,
        dissenters=[b.seat for b in valid if b not in agreeing],
        scores={
            "median": median,
            "q1": quartiles[0],
            "q3": quartiles[2],
            "mean": round(statistics.fmean(values), 4),
            "min": values[0],
            "max": values[-1],
        },
    )
