"""The capping experiment's judge: is a reply in or out of character? And what it may learn from.

The judge is a nearest-centroid rule on reply embeddings with the question's direction taken
out: a persona's reply has left character when it is nearer the plain assistant's calibration
replies than its own persona's. What it is calibrated on must be disjoint from what it judges:

- its persona-breaking prompts are not the test's (``CappingPlan.judge_breaking``), and
- no calibration prompt nearly repeats a test question (``capping.near_duplicate``).

Plans written before that split (``plan.json`` without ``judge_breaking``) calibrated the judge
on the test's own breaking prompts. Their replies are re-analysed without running anything
again: the first half of their breaking prompts is kept for the test and the second half for
the judge (the split ``--breaking`` makes now), and calibration prompts that nearly repeat a
test question are left out of the judge (``judge_design``).

The judge's headline is its **balanced accuracy** (the mean of the in-character and
out-of-character recalls, by leave-one-out on its calibration replies), each assistant reply
counted once: judged against every persona, it scores the share of personas it is caught
against. Pooling assistant replies once per persona made the larger side count several
times over (a reported 84% was 66% balanced).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from council.app.experiments.capping import (
    ASSISTANT,
    NEAR_DUPLICATE,
    CappingReply,
    near_duplicate,
)
from council.meter.binary import wilson
from council.meter.metrics import normalised_mean

JUDGE_METHOD = (
    "nearest centroid on reply embeddings with the question's direction removed; "
    "leave-one-out on the calibration replies; balanced accuracy = mean of the two recalls, "
    "each assistant reply counted once (the share of personas it is caught against)"
)


def unit_rows(vectors: Any) -> Any:
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


@dataclass(frozen=True)
class JudgeDesign:
    """Which journalled replies train the judge and which the test scores."""

    test_templates: tuple[int, ...]  # indices into plan["breaking"] the test scores
    judge_templates: tuple[str, ...]  # wrapped around the calibration prompts for the judge
    wrapped_per_prompt: int  # calibration breaking rows per calibration prompt, as journalled
    judge_template_slots: tuple[int, ...]  # which of those slots the judge may use
    calibration_kept: tuple[int, ...]  # calibration prompts the judge may use
    dropped: tuple[dict[str, Any], ...]  # calibration prompts left out, and why
    reanalysed: bool  # a plan from before the split, re-analysed

    def calibration_prompt(self, row: CappingReply) -> int:
        """The calibration prompt a calibration reply answers (wrapped or not)."""
        if row.kind == "breaking":
            return row.index // max(self.wrapped_per_prompt, 1)
        return row.index

    def trains_judge(self, row: CappingReply) -> bool:
        if row.phase != "calibration" or self.calibration_prompt(row) not in self.calibration_kept:
            return False
        if row.kind == "breaking":
            return row.index % self.wrapped_per_prompt in self.judge_template_slots
        return True

    def tested(self, row: CappingReply) -> bool:
        if row.phase != "test":
            return False
        return row.kind != "breaking" or row.index in self.test_templates

    def to_json(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "test_breaking": [plan["breaking"][i] for i in self.test_templates],
            "judge_breaking": list(self.judge_templates),
            "calibration": [plan["calibration"][i] for i in self.calibration_kept],
            "calibration_left_out": list(self.dropped),
            "rule": f"no judge prompt may repeat a tested one; a calibration prompt whose "
            f"word set overlaps a test question's by Jaccard >= {NEAR_DUPLICATE} is left out",
            "reanalysed": self.reanalysed,
            **(
                {
                    "note": "plan.json predates the split: its replies were re-analysed with the "
                    "first half of its breaking prompts tested and the second half calibrating "
                    "the judge"
                }
                if self.reanalysed
                else {}
            ),
        }


def judge_design(plan: Mapping[str, Any]) -> JudgeDesign:
    """The split for ``plan`` (a ``CappingPlan.to_json()``, or an older plan.json)."""
    breaking = list(plan["breaking"])
    calibration = list(plan["calibration"])
    dropped, kept = [], []
    for index, prompt in enumerate(calibration):
        twin = near_duplicate(prompt, plan["questions"])
        if twin is None:
            kept.append(index)
        else:
            dropped.append({"prompt": prompt, "nearly_repeats": twin})
    if "judge_breaking" in plan:  # the judge had its own breaking prompts
        judge = list(plan["judge_breaking"])
        return JudgeDesign(
            test_templates=tuple(range(len(breaking))),
            judge_templates=tuple(judge),
            wrapped_per_prompt=len(judge),
            judge_template_slots=tuple(range(len(judge))),
            calibration_kept=tuple(kept),
            dropped=tuple(dropped),
            reanalysed=False,
        )
    half = (len(breaking) + 1) // 2
    return JudgeDesign(
        test_templates=tuple(range(half)),
        judge_templates=tuple(breaking[half:]),
        wrapped_per_prompt=len(breaking),
        judge_template_slots=tuple(range(half, len(breaking))),
        calibration_kept=tuple(kept),
        dropped=tuple(dropped),
        reanalysed=True,
    )


def _share(hits: Sequence[float]) -> float | None:
    return round(float(np.mean(hits)), 4) if len(hits) else None


def _wilson(hits: Sequence[float]) -> list[float] | None:
    """Wilson interval of a recall (fractional credits rounded to whole replies)."""
    if not hits:
        return None
    low, high = wilson(round(float(sum(hits))), len(hits))
    return [round(low, 4), round(high, 4)]


class Judge:
    """In or out of character: nearer the persona's calibration replies, or the assistant's."""

    def __init__(self, persona: dict[str, Any], assistant: Any) -> None:
        self.persona = {name: unit_rows(rows) for name, rows in persona.items()}
        self.assistant = unit_rows(assistant)

    def left(self, speaker: str, vector: Any, *, skip: tuple[str, int] | None = None) -> bool:
        """Whether ``vector`` reads as the assistant rather than ``speaker``; ``skip`` leaves
        one calibration reply (side, row) out of the centroids (leave-one-out)."""
        persona, assistant = self.persona[speaker], self.assistant
        if skip is not None and skip[0] == speaker:
            persona = np.delete(persona, skip[1], axis=0)
        if skip is not None and skip[0] == ASSISTANT:
            assistant = np.delete(assistant, skip[1], axis=0)
        return bool(vector @ normalised_mean(assistant) > vector @ normalised_mean(persona))

    def accuracy(self) -> dict[str, Any]:
        """Leave-one-out on the calibration replies: each persona reply judged against its own
        persona; each assistant reply against every persona, credited with the share of them
        it is caught against, so that it counts once."""
        kept = [
            float(not self.left(name, vector, skip=(name, i)))
            for name, rows in self.persona.items()
            for i, vector in enumerate(rows)
        ]
        caught = [
            float(np.mean([self.left(name, vector, skip=(ASSISTANT, i)) for name in self.persona]))
            for i, vector in enumerate(self.assistant)
        ]
        in_recall, out_recall = _share(kept), _share(caught)
        balanced = None
        if in_recall is not None and out_recall is not None:
            balanced = round((in_recall + out_recall) / 2, 4)
        pooled = len(kept) + len(caught) * len(self.persona)
        return {
            "balanced_accuracy": balanced,
            "in_character_recall": in_recall,
            "in_character_ci95": _wilson(kept),
            "out_of_character_recall": out_recall,
            "out_of_character_ci95": _wilson(caught),
            "persona_replies": len(kept),
            "assistant_replies": len(caught),
            # The old headline, for comparison only: assistant replies once per persona.
            "pooled_accuracy": round((sum(kept) + sum(caught) * len(self.persona)) / pooled, 4)
            if pooled
            else None,
            "method": JUDGE_METHOD,
        }
