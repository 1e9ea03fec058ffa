"""Does deliberation pay? ``council.Eval`` puts the same items to every arm (one model alone,
seats voting without talking, any protocol) and measures each against the gold answers.

Every answer is one row of ``answers.jsonl`` in the eval's folder, written as it is made, so
an interrupted eval continues where it stopped: a row that completed is never asked again (a
failed one is, on the next run). ``summary()`` reads the rows and writes ``summary.json`` and
``report.html`` (``council.reports.eval_page``) beside them. The statistics are the meter's
(``council.meter.accuracy``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.app.eval_arms import (
    ArmAnswer,
    EvalArm,
    EvalSettings,
    answer_item,
    parse_arm,
)
from council.app.eval_data import EvalItem, read_dataset, shipped_dataset
from council.app.measure import REPORT_FILE, SUMMARY_FILE
from council.base.errors import ConfigError
from council.meter.accuracy import accuracy, compare_all, error_correlation
from council.records.spec import CallSettings
from council.reports.eval_page import EvalReport
from council.seats.local import DEFAULT_LOCAL_MODEL
from council.seats.model import ChatModel

DEFAULT_ARMS = ("single", "vote", "protocol:high-council-quick")
ANSWERS_FILE = "answers.jsonl"
PLAN_FILE = "eval.json"


@dataclass(frozen=True)
class EvalCounts:
    """What one ``Eval.run()`` did: answers made, already on record, and failed."""

    ran: int
    skipped: int
    failed: int


class Eval:
    """Arms side by side on the same items of a JSONL dataset (default: the shipped one).

    ``arms`` are ``"single"``, ``"vote"`` and ``"protocol:NAME"``; ``models`` is the pool
    their seats sit on (``model`` alone: every seat on it; default the bundled local model);
    a vote arm has ``vote_seats`` seats. ``samples`` answers per item and arm (several make
    the item the unit of every interval). ``limit`` takes the first items of each category
    in turn, for a small slice. ``doubles`` maps model names to test doubles."""

    def __init__(
        self,
        dataset: Path | str | None = None,
        *,
        arms: Sequence[str] = DEFAULT_ARMS,
        model: str | None = None,
        models: Sequence[str] = (),
        vote_seats: int = 3,
        samples: int = 1,
        limit: int | None = None,
        out: Path | str = "eval/latest",
        max_tokens: int = 200,
        temperature: float = 0.7,
        endpoints: Mapping[str, str] | None = None,
        calls: CallSettings | None = None,
        doubles: Mapping[str, ChatModel] | None = None,
        title: str | None = None,
    ) -> None:
        if samples < 1:
            raise ConfigError(f"samples must be at least 1, got {samples}")
        self.dataset = Path(dataset) if dataset is not None else shipped_dataset()
        self.items = _slice(read_dataset(self.dataset), limit)
        pool = list(models) or [model or DEFAULT_LOCAL_MODEL]
        if model and models and model not in pool:
            pool.insert(0, model)
        self.arms = [parse_arm(text, pool, vote_seats) for text in arms]
        names = [arm.name for arm in self.arms]
        if len(set(names)) < len(names):
            raise ConfigError(f"arms repeat: {', '.join(names)}")
        self.samples = samples
        self.out = Path(out)
        self.title = title or f"Eval on {self.dataset.name}"
        self.settings = EvalSettings(
            max_tokens=max_tokens,
            temperature=temperature,
            endpoints=dict(endpoints or {}),
            calls=calls,
            runs_dir=self.out / "runs",
            doubles=dict(doubles or {}),
        )

    def __repr__(self) -> str:
        arms = ", ".join(arm.name for arm in self.arms)
        return (
            f"Eval(arms {arms}; {len(self.items)} items x {self.samples} samples; "
            f"out={str(self.out)!r})"
        )

    def plan(self) -> dict[str, Any]:
        """What the folder's answers are answers to: a folder holds one plan."""
        return {
            "dataset": str(self.dataset),
            "items": [item.id for item in self.items],
            "samples": self.samples,
            "arms": [arm.to_json() for arm in self.arms],
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
        }

    def _check_plan(self) -> None:
        path = self.out / PLAN_FILE
        plan = self.plan()
        if path.is_file():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if recorded != plan:
                raise ConfigError(
                    f"{self.out} holds another eval (its {PLAN_FILE} differs): give another "
                    "--out, or the same arms, items and settings to continue it"
                )
            return
        self.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")

    def answers(self) -> list[ArmAnswer]:
        """The rows on record, the last one of each (arm, item, sample) kept."""
        path = self.out / ANSWERS_FILE
        if not path.is_file():
            return []
        kept: dict[tuple[str, str, int], ArmAnswer] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = ArmAnswer.model_validate_json(line)
                kept[(row.arm, row.item, row.sample)] = row
        return list(kept.values())

    def run(self, progress: Callable[[str], None] | None = None) -> EvalCounts:
        """Answer every (arm, item, sample) not yet on record, then write the summary."""
        self._check_plan()
        done = {(a.arm, a.item, a.sample) for a in self.answers() if a.error is None}
        say = progress or (lambda _: None)
        counts = asyncio.run(self._answer_all(done, say))
        self.summary()
        return counts

    async def _answer_all(
        self, done: set[tuple[str, str, int]], say: Callable[[str], None]
    ) -> EvalCounts:
        ran = skipped = failed = 0
        with (self.out / ANSWERS_FILE).open("a", encoding="utf-8") as journal:
            for sample in range(self.samples):
                for item in self.items:
                    for arm in self.arms:
                        if (arm.name, item.id, sample) in done:
                            skipped += 1
                            continue
                        answer = await answer_item(arm, item, sample, self.settings)
                        journal.write(answer.model_dump_json() + "\n")
                        journal.flush()  # on record as soon as made: a stop loses nothing
                        ran += 1
                        failed += answer.error is not None
                        mark = "ok" if answer.correct else "wrong"
                        say(f"{arm.name} {item.id} s{sample}: {answer.answer!r} ({mark})")
        return EvalCounts(ran, skipped, failed)

    def run_and_summarise(self, progress: Callable[[str], None] | None = None) -> EvalReport:
        """``run()``, then the summary it wrote."""
        self.run(progress)
        return self.summary()

    def summary(self) -> EvalReport:
        """Measure what is on record; writes ``summary.json`` and ``report.html``."""
        if not (self.out / PLAN_FILE).is_file():
            raise ConfigError(f"{self.out}: no eval has run here")
        report = EvalReport(summarise(self.title, self.items, self.arms, self.answers()))
        (self.out / SUMMARY_FILE).write_text(
            json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        report.write_html(self.out / REPORT_FILE)
        return report


def _slice(items: list[EvalItem], limit: int | None) -> list[EvalItem]:
    """The first ``limit`` items, taken from each category in turn (all when None)."""
    if limit is None:
        return items
    if limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    by_category: dict[str, list[EvalItem]] = {}
    for item in items:
        by_category.setdefault(item.category, []).append(item)
    queues = list(by_category.values())
    picked: list[EvalItem] = []
    while len(picked) < min(limit, len(items)):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def _arm_summary(
    arm: EvalArm, rows: list[ArmAnswer], categories: Mapping[str, str], gold: Mapping[str, str]
) -> dict[str, Any]:
    correct = [int(r.correct) for r in rows]
    per_category: dict[str, Any] = {}
    for category in sorted(set(categories.values())):
        mine = [r for r in rows if categories.get(r.item) == category]
        if mine:
            per_category[category] = accuracy(
                [int(r.correct) for r in mine], [r.item for r in mine]
            ).to_json()
    seats = sorted({s for r in rows for s in r.seat_answers})
    # Each seat's own answer against gold (an unanswered seat is wrong); rows missing a seat
    # (a failed run) are left out rather than counted as errors of that seat.
    seat_rows = [
        [int(r.seat_answers.get(s) == gold[r.item]) for s in seats]
        for r in rows
        if len(r.seat_answers) == len(seats)
    ]
    seat_items = [r.item for r in rows if len(r.seat_answers) == len(seats)]
    errors = error_correlation(seat_rows, seat_items) if len(seats) > 1 else None
    items = len({r.item for r in rows}) or 1
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in rows)
    return {
        **arm.to_json(),
        "accuracy": accuracy(correct, [r.item for r in rows]).to_json(),
        "answers": len(rows),
        "unanswered": sum(r.answer is None for r in rows),
        "failed": sum(r.error is not None for r in rows),
        "calls": sum(r.calls for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "tokens_per_item": round(tokens / items, 1),
        "cost_usd": round(sum(r.cost_usd for r in rows), 6),
        "categories": per_category,
        "error_correlation": errors.to_json() if errors else None,
    }


def summarise(
    title: str, items: Sequence[EvalItem], arms: Sequence[EvalArm], answers: Sequence[ArmAnswer]
) -> dict[str, Any]:
    """The eval's summary as JSON: per arm, per category, paired comparisons, seat errors."""
    wanted = {item.id for item in items}
    rows = [a for a in answers if a.item in wanted]
    categories = {item.id: item.category for item in items}
    gold = {item.id: item.answer for item in items}
    summaries = [
        _arm_summary(arm, [r for r in rows if r.arm == arm.name], categories, gold) for arm in arms
    ]
    by_arm: dict[str, dict[Any, list[int]]] = {}
    for arm in arms:
        grouped: dict[Any, list[int]] = {}
        for r in rows:
            if r.arm == arm.name:
                grouped.setdefault(r.item, []).append(int(r.correct))
        if grouped:
            by_arm[arm.name] = grouped
    comparisons = compare_all(by_arm) if len(by_arm) > 1 else []
    return {
        "kind": "eval",
        "title": title,
        "items": len(items),
        "categories": sorted(set(categories.values())),
        "samples": max((r.sample for r in rows), default=0) + 1,
        "arms": summaries,
        "comparisons": [c.to_json() for c in comparisons],
    }
