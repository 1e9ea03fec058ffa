"""What capping did, with intervals: drift on the axis and in embeddings, how often a seat left
character by a stated judge, how often it looped, and how different the personas stayed.

- **Activation position**: a reply's mean projection on the axis, rescaled so that 0 is the
  persona calibration replies' mean and 1 the plain assistant's (same reply length).
- **Embedding drift**: the meter's ``drift_position`` between the card's own text (0) and the
  plain assistant's answers to the same questions (1).
- **Left character** (the judge): a reply's embedding, with its question's direction taken
  out, is nearer the plain assistant's calibration replies (plainly asked, and under the
  breaking prompts) than its persona's. The judge is checked by leave-one-out on the
  calibration replies, and its accuracy and the recall of each side are reported beside every
  rate it gives.
- **Looping**: the share of a reply's word trigrams that repeat an earlier one.
- **Diversity**: the personas' mean pairwise embedding distance on the same prompt, and
  identifiability: leave-one-out accuracy of persona from reply, within each prompt.

Each is given per arm and prompt kind with a BCa interval, and as paired differences (capped
minus free, the same persona and prompt) with a BCa interval of the mean difference and a
paired sign-flip p-value (McNemar's exact test for the 0/1 judge).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from council.app.experiments.capping import (
    ASSISTANT,
    SUMMARY,
    CappingPlan,
    CappingReply,
    Speaker,
    reader_speaker,
    run_capping,
)
from council.app.experiments.folder import experiment_embedder
from council.diversity.analysis import card_reference_text
from council.diversity.embedders import Embedder
from council.diversity.identifiability import identifiability
from council.diversity.metrics import drift_position, mean_pairwise_distance, normalised_mean
from council.diversity.stats import mean_interval, paired_permutation_test
from council.errors import ConfigError
from council.personas.card import PersonaCard
from council.personas.library import find_persona
from council.seats.activations.axis import AssistantAxis

METRICS = ("activation_position", "embedding_drift", "left_character", "looping", "clamped")
KINDS = ("question", "breaking", "all")
_WORD = re.compile(r"\w+")


def looping(text: str) -> float:
    """Share of word trigrams that repeat an earlier trigram of the same text."""
    words = _WORD.findall(text.lower())
    grams = list(zip(words, words[1:], words[2:], strict=False))
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def _unit(vectors: Any) -> Any:
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


class Judge:
    """In or out of character: nearer the persona's calibration replies, or the assistant's."""

    def __init__(self, persona: dict[str, Any], assistant: Any) -> None:
        self.persona = {name: _unit(rows) for name, rows in persona.items()}
        self.assistant = _unit(assistant)

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
        persona, each assistant reply against every persona. The out-of-character side is the
        larger, so the recall of each side is given beside the overall accuracy."""
        kept = [
            not self.left(name, vector, skip=(name, i))
            for name, rows in self.persona.items()
            for i, vector in enumerate(rows)
        ]
        caught = [self.left(name, vector, skip=(ASSISTANT, i))
                  for name in self.persona for i, vector in enumerate(self.assistant)]  # fmt: skip
        total = len(kept) + len(caught)

        def share(hits: list[bool]) -> float | None:
            return round(sum(hits) / len(hits), 4) if hits else None

        return {
            "accuracy": share(kept + caught), "n": total,
            "in_character_recall": share(kept), "out_of_character_recall": share(caught),
            "method": "leave-one-out nearest centroid on the calibration replies, question "
                      "direction removed",
        }  # fmt: skip


def _vectors(rows: Sequence[CappingReply], embedder: Embedder) -> dict[tuple[Any, ...], Any]:
    texts = [r.text or " " for r in rows]
    encoded = _unit(embedder.encode(texts))
    return {r.key: v for r, v in zip(rows, encoded, strict=True)}


def _question(row: CappingReply, plan: dict[str, Any]) -> str:
    """The question a reply is about (a breaking prompt wraps one of the questions)."""
    if row.phase == "calibration":  # a breaking one wraps calibration prompt index // count
        per = len(plan["breaking"]) if row.kind == "breaking" else 1
        return str(plan["calibration"][row.index // per])
    questions = plan["questions"]
    return str(questions[row.index % len(questions)])


def _without_topic(
    rows: Sequence[CappingReply], vectors: dict[tuple[Any, ...], Any], plan: dict[str, Any],
    embedder: Embedder,
) -> dict[tuple[Any, ...], Any]:  # fmt: skip
    """Each reply's embedding with the direction of its question's embedding taken out, so the
    judge compares voices rather than topics (on the bundled model's calibration replies this
    took its leave-one-out accuracy from 62% to 100%)."""
    asked = sorted({_question(r, plan) for r in rows})
    topics = dict(zip(asked, _unit(embedder.encode(asked)), strict=True))
    kept = {}
    for row in rows:
        vector, topic = vectors[row.key], topics[_question(row, plan)]
        kept[row.key] = _unit([vector - (vector @ topic) * topic])[0]
    return kept


def reply_metrics(
    rows: Sequence[CappingReply],
    cards: Sequence[PersonaCard],
    embedder: Embedder,
    plan: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One metric row per persona test reply, and the judge's own accuracy."""
    vectors = _vectors(rows, embedder)
    voices = _without_topic(rows, vectors, plan, embedder)
    calibration = [r for r in rows if r.phase == "calibration"]
    plain = [r for r in calibration if r.kind == "calibration"]  # the axis scale: plain prompts
    persona_cal = [r.projection for r in plain if r.speaker != ASSISTANT]
    assistant_cal = [r.projection for r in plain if r.speaker == ASSISTANT]
    low, high = float(np.mean(persona_cal)), float(np.mean(assistant_cal))
    judge = Judge(
        {c.name: [voices[r.key] for r in calibration if r.speaker == c.name] for c in cards},
        [voices[r.key] for r in calibration if r.speaker == ASSISTANT],
    )
    answers = [vectors[r.key] for r in rows if r.phase == "test" and r.speaker == ASSISTANT]
    assistant_pole = normalised_mean(np.stack(answers))
    references = _unit(embedder.encode([card_reference_text(c) for c in cards]))
    poles = {c.name: ref for c, ref in zip(cards, references, strict=True)}
    metrics = []
    for row in rows:
        if row.phase != "test" or row.speaker == ASSISTANT:
            continue
        vector = vectors[row.key]
        metrics.append({
            "speaker": row.speaker, "kind": row.kind, "index": row.index, "arm": row.arm,
            "activation_position": (row.projection - low) / (high - low) if high != low else None,
            "embedding_drift": drift_position(vector, poles[row.speaker], assistant_pole),
            "left_character": float(judge.left(row.speaker, voices[row.key])),
            "looping": looping(row.text), "clamped": row.clamped, "vector": vector,
        })  # fmt: skip
    return metrics, {**judge.accuracy(), "persona_mean_projection": round(low, 4),
                     "assistant_mean_projection": round(high, 4)}  # fmt: skip


def _of_kind(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if kind == "all" or r["kind"] == kind]


def _diversity(rows: list[dict[str, Any]], arm: str) -> dict[tuple[str, int], float]:
    """Per prompt (kind, index), the personas' mean pairwise distance under ``arm``."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        if row["arm"] == arm:
            groups.setdefault((row["kind"], row["index"]), []).append(row["vector"])
    return {key: mean_pairwise_distance(np.stack(v)) for key, v in groups.items() if len(v) >= 2}


def _estimates(values: dict[str, list[float]]) -> dict[str, Any]:
    return {name: mean_interval([v for v in vals if v is not None]).to_json()
            for name, vals in values.items()}  # fmt: skip


def summarise_capping(
    rows: Sequence[CappingReply],
    cards: Sequence[PersonaCard],
    embedder: Embedder,
    *,
    ceiling: float,
    plan: dict[str, Any],
) -> dict[str, Any]:
    """Per arm and prompt kind, each metric with its interval; and the paired differences."""
    metrics, judge = reply_metrics(rows, cards, embedder, plan)
    diversity = {arm: _diversity(metrics, arm) for arm in ("free", "capped")}
    arms: dict[str, Any] = {}
    differences: dict[str, Any] = {}
    for kind in KINDS:
        chosen = _of_kind(metrics, kind)
        for arm in ("free", "capped"):
            mine = [r for r in chosen if r["arm"] == arm]
            values = {m: [r[m] for r in mine] for m in METRICS}
            values["diversity"] = [d for (k, _), d in diversity[arm].items()
                                   if kind in ("all", k)]  # fmt: skip
            arms.setdefault(arm, {})[kind] = _estimates(values)
        differences[kind] = _paired(chosen, diversity, kind)
    return {
        "plan": plan, "ceiling": round(ceiling, 4), "judge": judge,
        "replies": len(metrics), "arms": arms, "differences": differences,
        "identifiability": {arm: _identifiable(metrics, arm) for arm in ("free", "capped")},
    }  # fmt: skip


def _identifiable(metrics: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    """Can the personas' replies under ``arm`` be told apart by who gave them? Blocked by
    prompt, so a persona is told from the others answering the same prompt."""
    mine = [r for r in metrics if r["arm"] == arm]
    result = identifiability(
        np.stack([r["vector"] for r in mine]), [r["speaker"] for r in mine],
        blocks=[(r["kind"], r["index"]) for r in mine], of="persona", detail=arm,
    )  # fmt: skip
    return result.to_json()


def _paired(
    chosen: list[dict[str, Any]], diversity: dict[str, dict[tuple[str, int], float]], kind: str
) -> dict[str, Any]:
    """Capped minus free for each metric, paired by persona and prompt (diversity by prompt)."""
    by_key = {(r["speaker"], r["kind"], r["index"], r["arm"]): r for r in chosen}
    pairs = [(by_key[(s, k, i, "free")], r) for (s, k, i, arm), r in by_key.items()
             if arm == "capped" and (s, k, i, "free") in by_key]  # fmt: skip
    values: dict[str, list[float]] = {}
    for metric in METRICS:
        values[metric] = [capped[metric] - free[metric] for free, capped in pairs
                          if capped[metric] is not None and free[metric] is not None]  # fmt: skip
    free, capped = diversity["free"], diversity["capped"]
    values["diversity"] = [capped[key] - free[key] for key in free
                           if key in capped and kind in ("all", key[0])]  # fmt: skip
    estimates = _estimates(values)
    for metric, differences in values.items():
        if differences:
            test = paired_permutation_test([0.0] * len(differences), differences)
            estimates[metric] |= {"p_value": round(test.p_value, 4), "test": test.method}
    return estimates


def capping_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a plain table: one line per metric and prompt kind."""

    def cell(estimate: dict[str, Any]) -> str:
        if estimate["mean"] is None:
            return "n/a"
        ci = estimate["ci95"]
        return f"{estimate['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")

    judge = summary["judge"]
    told = summary.get("identifiability", {})
    lines = [
        f"cap: projection <= {summary['ceiling']:+.3f} at every position "
        f"({summary['plan']['percentile']:g}th percentile of the persona calibration replies)",
        f"judge: {judge['accuracy']:.0%} right on {judge['n']} calibration replies (in character "
        f"kept {judge['in_character_recall']:.0%}, out of character caught "
        f"{judge['out_of_character_recall']:.0%}; {judge['method']})",
        f"{'metric':22} {'prompts':9} {'free':26} {'capped':26} {'capped - free':26} p",
    ]
    for metric, kind in itertools.product((*METRICS, "diversity"), KINDS):
        free = summary["arms"]["free"][kind][metric]
        capped = summary["arms"]["capped"][kind][metric]
        diff = summary["differences"][kind][metric]
        p = f"{diff['p_value']:.3g}" if "p_value" in diff else "n/a"
        lines.append(f"{metric:22} {kind:9} {cell(free):26} {cell(capped):26} {cell(diff):26} {p}")
    for arm, result in told.items():
        if result.get("accuracy") is not None:
            lines.append(
                f"identifiability ({arm}): persona from reply {result['accuracy']:.3f} "
                f"(shuffled {result['null_mean']:.3f}, p {result['p_value']:.3g}, "
                f"{result['samples']} replies)"
            )
    return lines


def capping_experiment(
    plan: CappingPlan,
    out: Path,
    *,
    axis: AssistantAxis,
    speaker: Speaker | None = None,
    embedder: str | Embedder | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the experiment in ``out``, summarise it and write ``summary.json``.
    ``speaker``: how replies are generated; by default the bundled model in PyTorch."""
    cards = [find_persona(name) for name in plan.personas]
    if speaker is None:
        from council.seats.activations.backend import shared_reader

        reader = shared_reader(axis.model.rpartition("/")[2])
        if reader.sha256 != axis.model_sha256:
            raise ConfigError(f"the axis {axis.axis_id} was built on other weights than "
                              f"{plan.model}: rebuild it with 'council axis build'")  # fmt: skip
        speaker = reader_speaker(reader, axis)
    rows, ceiling = run_capping(plan, cards, speaker, out, progress=progress)
    model = experiment_embedder(embedder, out)
    summary = summarise_capping(rows, cards, model, ceiling=ceiling, plan=plan.to_json())
    summary["embedder"] = model.name
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, allow_nan=False), encoding="utf-8")
    return summary
