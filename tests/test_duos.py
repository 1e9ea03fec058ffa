"""Duo mode seats the polarity pair nyk's duo table gives a question (SKILL.md v1.2.0, "Duo
Polarity Pairs"; MIT, 0xNyk): one question per row of the table, in nyk's keywords, with nyk's
18 cards imported beside the shipped ones (whose own duo table competes for the same words)."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.app.choosing import choose
from council.base.errors import ConfigError
from council.cli.main import main
from council.personas.duos import DuoEntry, DuoRow, choose_duo
from council.personas.library import find_persona

NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"

# question -> nyk's pair for it (the table's row whose keywords the question uses)
NYK_TABLE = [
    ("Should we restructure the architecture into clear categories?", ("aristotle", "lao-tzu")),
    ("Do we release now, or wait for better timing?", ("torvalds", "musashi")),
    ("How do we beat the competition in this market?", ("sun-tzu", "aurelius")),
    ("Is formalization of this abstraction worth the effort?", ("ada", "machiavelli")),
    ("What is the purpose and meaning of this project?", ("socrates", "watts")),
    ("Should engineering pragmatism beat theory on our team?", ("torvalds", "watts")),
    ("How should we approach training a neural model on our data?", ("karpathy", "sutskever")),
    ("Is our alignment work enough to manage AI-safety risk?", ("sutskever", "machiavelli")),
    ("Is my judgment distorted by bias in this decision?", ("kahneman", "feynman")),
    ("Where do the feedback loops in this complexity come from?", ("meadows", "torvalds")),
    ("Is this investment a moat or just good economics?", ("munger", "aristotle")),
    ("How exposed is this plan to fragility and tail uncertainty?", ("taleb", "karpathy")),
    ("How do we improve usability for each user of the design?", ("rams", "ada")),
    ("What should I have for lunch?", ("socrates", "feynman")),  # no keyword: the default
    ("Should we use microservices or monolith?", ("aristotle", "lao-tzu")),  # nyk's example
]


@pytest.mark.parametrize(("question", "pair"), NYK_TABLE)
def test_duo_pair_matches_nyks_table(imported: Path, question: str, pair: tuple[str, str]) -> None:
    choice = choose(question, None, duo=True)
    assert choice is not None
    assert choice.personas == [f"council-{name}" for name in pair]
    assert "nyk.yaml" in choice.why[0]  # the line says which table, and why this row


def test_duo_says_the_pair_its_tension_and_the_words_that_chose_it(imported: Path, capsys) -> None:
    argv = [
        "convene",
        "Do we release now, or wait for better timing?",
        "--protocol",
        "duo",
        "--dry-route",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "duo council-torvalds vs council-musashi - Ship now vs wait for timing" in err
    assert "the question's words: release, timing" in err


def test_shipped_cards_alone_use_the_shipped_duo_table() -> None:
    choice = choose(
        "Should the central bank fight inflation with higher interest rates?", None, duo=True
    )
    assert choice is not None and choice.personas == ["hayek", "keynes"]
    assert "library.yaml" in choice.why[0]


def test_a_duo_row_needs_keywords_or_default_and_two_members() -> None:
    with pytest.raises(ValueError, match="needs keywords"):
        DuoEntry(pair=["popper", "kuhn"])
    with pytest.raises(ValueError, match="two different members"):
        DuoEntry(pair=["popper", "popper"], keywords=["science"])


def test_no_match_and_no_default_row_is_a_clear_error() -> None:
    rows = [DuoRow(DuoEntry(pair=["popper", "kuhn"], keywords=["science"]), "mine.yaml")]
    cards = [find_persona("popper"), find_persona("kuhn")]
    with pytest.raises(ConfigError, match="no duo's keywords match"):
        choose_duo("What should I have for lunch?", cards, rows)
    assert choose_duo("Is this science?", cards, rows)[0] == ["popper", "kuhn"]
