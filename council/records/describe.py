"""Tallies in words, for the seats that read them and for the transcript."""

from __future__ import annotations

from council.records.run import Tally


def describe_tally(tally: Tally, name: dict[str, str]) -> str:
    """One paragraph a seat can read; ``name`` maps seats to how this reader knows them."""
    if tally.kind == "ranking":
        order = sorted(tally.scores.items(), key=lambda item: item[1])
        places = ", ".join(
            f"{i}. {name.get(s, s)} (average place {v:.2f})" for i, (s, v) in enumerate(order, 1)
        )
        return f"Aggregate ranking: {places}."
    if tally.winner is None:
        return f"Vote ({tally.rule}): no valid winner ({len(tally.invalid)} unreadable ballots)."
    share = f"{(tally.agreement or 0):.0%}"
    if tally.rule == "median":
        s = tally.scores
        text = (
            f"Group estimate: median {s['median']:g}, interquartile range {s['q1']:g} to "
            f"{s['q3']:g}, {len(tally.ballots) - len(tally.invalid)} estimates; {share} lie "
            "close to the median."
        )
    else:
        counts = ", ".join(f"{option} {score:g}" for option, score in tally.scores.items())
        of = f" of {tally.denominator:g}" if tally.denominator else ""
        verdict = "consensus reached" if tally.consensus else "no consensus: a split"
        text = (f"Vote ({tally.rule}): {counts}{of}. Leading: {tally.winner} with {share}; "
                f"{verdict}.")  # fmt: skip
    if tally.dissenters:
        text += " Dissent: " + ", ".join(name.get(s, s) for s in tally.dissenters) + "."
    if tally.abstained:
        text += " Abstained: " + ", ".join(name.get(s, s) for s in tally.abstained) + "."
    if tally.split and tally.arguments:
        text += (
            " Strongest arguments: "
            + "; ".join(f"{option}: {reason}" for option, reason in tally.arguments.items())
            + "."
        )
    deal = [f"{name.get(b.seat, b.seat)}: {b.dealbreaker}" for b in tally.ballots if b.dealbreaker]
    if deal:
        text += " Dealbreakers: " + "; ".join(deal) + "."
    return text
