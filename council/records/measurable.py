"""What the diversity meter counts as a reply worth measuring, and how many no-persona answers
make a baseline. Here, in the bottom layer, so that the engine's guards (below the meter) and
the meter itself hold replies to the same line.

The *no-persona baseline* is what a seat's model answers to the same prompt under the plain
assistant prompt: the diversity that sampling alone produces. (The *placebo floor*, the same
persona in every seat, is the experiments' reference; it is not measured here.)
"""

from __future__ import annotations

# One short sentence. Shorter replies ("Yes.", "I agree.", a 3-character fragment) state no
# position, and their embeddings rest on a word or two. They are left out of every mean and
# counted.
MIN_REPLY_CHARACTERS = 40

# The no-persona answers per model the guard and `council diversity --baseline` ask for by
# default. At 3 (the old default) a 4-seat stage cannot be tested at all (the test needs as
# many answers as seats on a model) and a 3-seat one has C(6, 3) = 20 relabellings, so p can
# never fall below 0.05; at 8 a 4-seat stage has C(12, 4) = 495. One 13-character answer
# moved a 3-answer floor from about 0.3 to 0.74.
BASELINE_ANSWERS = 8


def measurable(text: str | None) -> bool:
    """Whether a reply is long enough to be measured (at least MIN_REPLY_CHARACTERS,
    surrounding whitespace aside)."""
    return len((text or "").strip()) >= MIN_REPLY_CHARACTERS
