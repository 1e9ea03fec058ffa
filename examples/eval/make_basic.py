"""Write council's shipped eval dataset, ``council/data/eval/basic.jsonl``: 120 questions with
one correct option each, correct by construction (computed here, or facts a schoolbook
states), 20 in each of six categories. Deterministic: the same seed writes the same file, and
tests/test_eval.py checks the shipped file is this script's output.

    python examples/eval/make_basic.py            # rewrite the shipped file
    python examples/eval/make_basic.py --check    # exit 1 if the shipped file differs
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 31
PER_CATEGORY = 20
TARGET = Path(__file__).resolve().parents[2] / "council" / "data" / "eval" / "basic.jsonl"

# Capitals a schoolbook states, with no dispute over which city is meant.
CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Egypt": "Cairo",
    "Canada": "Ottawa", "Australia": "Canberra", "Kenya": "Nairobi", "Peru": "Lima",
    "Norway": "Oslo", "Spain": "Madrid", "Germany": "Berlin", "Portugal": "Lisbon",
    "Argentina": "Buenos Aires", "Greece": "Athens", "Ireland": "Dublin",
    "Poland": "Warsaw", "Thailand": "Bangkok", "Austria": "Vienna", "Cuba": "Havana",
    "Mexico": "Mexico City", "Sweden": "Stockholm", "Finland": "Helsinki",
}  # fmt: skip
UNITS = [  # (from, to, factor): 1 from = factor to
    ("kilometres", "metres", 1000), ("metres", "centimetres", 100), ("hours", "minutes", 60),
    ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("litres", "millilitres", 1000),
    ("days", "hours", 24), ("weeks", "days", 7),
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NAMES = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"]


def _numeric_options(rng: random.Random, gold: int) -> list[str]:
    """The gold number and three distinct near misses, shuffled."""
    wrong: set[int] = set()
    while len(wrong) < 3:
        miss = gold + rng.choice([-10, -2, -1, 1, 2, 10, gold or 1])
        if miss != gold and miss >= 0:
            wrong.add(miss)
    options = [str(gold), *map(str, sorted(wrong))]
    rng.shuffle(options)
    return options


def arithmetic(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    a, b = rng.randint(12, 99), rng.randint(3, 19)
    op, gold = [("plus", a + b), ("minus", a - b), ("times", a * b)][i % 3]
    return f"What is {a} {op} {b}?", _numeric_options(rng, gold), str(gold)


def units(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    source, target, factor = UNITS[i % len(UNITS)]
    amount = rng.randint(2, 9)
    gold = amount * factor
    question = f"How many {target} are in {amount} {source}?"
    wrong = {amount * factor * 10, amount * factor // 10 or amount + 1, amount + factor}
    wrong.discard(gold)
    while len(wrong) < 3:
        wrong.add(gold + rng.randint(1, 9))
    options = [str(gold), *[str(w) for w in sorted(wrong)][:3]]
    rng.shuffle(options)
    return question, options, str(gold)


def geography(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    country = sorted(CAPITALS)[i % len(CAPITALS)]
    gold = CAPITALS[country]
    others = rng.sample(sorted(c for c in CAPITALS.values() if c != gold), 3)
    options = [gold, *others]
    rng.shuffle(options)
    return f"What is the capital city of {country}?", options, gold


def logic(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    a, b, c = rng.sample(NAMES, 3)
    if i % 2 == 0:  # a transitive order: the shortest is the last of the chain
        question = f"{a} is taller than {b}. {b} is taller than {c}. Who is the shortest?"
        options = [a, b, c]
        rng.shuffle(options)
        return question, options, c
    holds = rng.random() < 0.5
    premise = f"Every member of the club is a {'painter' if holds else 'singer'}."
    question = (
        f"{premise} {a} is a member of the club. Must {a} be a painter? Answer yes or no, "
        "from these statements alone."
    )
    return question, ["yes", "no"], "yes" if holds else "no"


def ordering(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    numbers = rng.sample(range(10, 100), 4)
    largest = i % 2 == 0
    word = "largest" if largest else "smallest"
    gold = max(numbers) if largest else min(numbers)
    listed = ", ".join(str(n) for n in numbers)
    return f"Which of {listed} is the {word}?", [str(n) for n in numbers], str(gold)


def calendar(rng: random.Random, i: int) -> tuple[str, list[str], str]:
    start, step = rng.randrange(7), rng.randint(2, 6)
    gold = DAYS[(start + step) % 7]
    others = rng.sample([d for d in DAYS if d != gold], 3)
    options = [gold, *others]
    rng.shuffle(options)
    return f"Which day of the week comes {step} days after {DAYS[start]}?", options, gold


CATEGORIES = {
    "arithmetic": arithmetic,
    "units": units,
    "geography": geography,
    "logic": logic,
    "ordering": ordering,
    "calendar": calendar,
}


def items() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    out: list[dict[str, object]] = []
    asked: set[str] = set()
    for category, make in CATEGORIES.items():
        for i in range(PER_CATEGORY):
            question, options, answer = make(rng, i)
            while question in asked:  # every question once: a repeat is drawn again
                question, options, answer = make(rng, i)
            asked.add(question)
            assert answer in options and len(set(options)) == len(options), question
            item_id = f"{category}-{i + 1:02d}"
            out.append(
                {
                    "id": item_id,
                    "question": question,
                    "options": options,
                    "answer": answer,
                    "category": category,
                }
            )
    return out


def text() -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items())


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return 0 if TARGET.read_text(encoding="utf-8") == text() else 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text(), encoding="utf-8")
    print(f"wrote {len(items())} items to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
