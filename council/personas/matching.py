"""Matching a question's words against short texts (a card's domain, a duo's keywords) without
a model call: inflection-tolerant word stems, and the embedder's type for callers that have one.

The stemmer is deliberately small: it folds the inflections a question actually uses
("ship", "ships", "shipped", "shipping"; "category", "categories"; "release", "releasing")
onto one stem and leaves derivation alone, so that two different words never meet by
accident. Synonyms are data (a duo table's ``also``), or the embedder's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Encode = Callable[[list[str]], Any]  # texts -> unit row vectors (an embedder's encode)

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_VOWELS = set("aeiouy")
_DOUBLE_KEPT = set("lsz")  # "fall", "pass", "buzz" keep their double letter
# Function words: "the" in a question and in a domain is no shared subject.
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be but by can could do does for from had has have how i if in "
        "into is it its may might more most must no nor not of on or our should so than that "
        "the their them then there these they this those to us was we were what when where "
        "which who whom why will with would you your",
    )
)


def stem(word: str) -> str:
    """Fold inflections: plural -s/-es/-ies, -ed, -ing, a final silent -e, a doubled final
    consonant. Words of three letters or fewer are kept as they are ("ai", "ux", "ml")."""
    w = word.lower().removesuffix("'s").replace("dgement", "dgment")  # judgement, judgment
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and w != "bias":
        w = w[:-1]
    for suffix in ("ing", "ed"):
        base = w[: -len(suffix)]
        if w.endswith(suffix) and len(base) >= 3 and _VOWELS & set(base):
            w = base
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in _VOWELS | _DOUBLE_KEPT:
                w = w[:-1]
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    """The words of a text, lowercased; a hyphenated word stays one word."""
    return _WORD.findall(text.lower())


def stems(text: str) -> set[str]:
    """Every content word's stem, and every part of a hyphenated word's too."""
    found: set[str] = set()
    for word in words(text):
        parts = [word, *word.split("-")] if "-" in word else [word]
        found.update(stem(part) for part in parts if part not in _STOP)
    return found


def phrase_stems(question: set[str], phrase: str) -> set[str]:
    """The question's stems (given as ``stems(question)``) that a keyword phrase matches: all
    of its words' stems when every one is there ("ai-safety" in "is AI safety solved?"),
    else none. A phrase of two words counts two; two phrases of one stem count once."""
    parts = {stem(p) for p in re.split(r"[\s-]+", phrase.lower()) if p and p not in _STOP}
    return parts if parts and parts <= question else set()
