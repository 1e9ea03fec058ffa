"""What capping did, with intervals: drift on the axis and in embeddings, how often a seat left
character by a stated judge, how often it looped, and how different the personas stayed.

- **Activation position**: a reply's mean projection on the axis, rescaled so that 0 is the
  persona calibration replies' mean and 1 the plain assistant's (same reply length).
- **Embedding drift**: the meter's ``drift_position`` between the card's own text (0) and the
  plain assistant's answers to the same questions (1).
- **Left character** (the judge, ``capping_judge``): 1 when a reply, its question's direction
  taken out, is nearer the plain assistant's calibration replies than its persona's. The
  judge is calibrated on prompts disjoint from the test, and its balanced accuracy is given
  beside every rate it produces.
- **Looping**: the share of a reply's word trigrams that repeat an earlier one.
- **Diversity**: the personas' mean pairwise embedding distance on the same prompt, and
  identifiability: leave-one-out accuracy of persona from reply, within each prompt.

Inference respects the design. Replies cluster in the questions they answer (a breaking prompt
wraps one of them), so a continuous metric is averaged within each question first: per arm,
the mean of the question means with a t interval on them (G - 1 degrees of freedom, G
questions); capped minus free, the same on the question means of the paired differences
(same persona and prompt), with a one-sample t-test (``scipy.stats.ttest_1samp``). The 0/1
judge is compared exactly: Wilson intervals per arm, and for the paired difference the exact
conditional McNemar test with Newcombe's hybrid score interval
(``council.meter.binary.paired_binary``).

Multiplicity: one primary endpoint, leaving character on the persona-breaking prompts, capped
against free; every other p-value (the other metrics and prompt kinds, and identifiability) is
secondary and Holm-adjusted (``adjusted_p``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from council.app.experiments.capping import (
    ASSISTANT,
    JOURNAL,
    SUMMARY,
    CappingPlan,
    CappingReply,
    Speaker,
    _journal_row,
    cap_ceiling,
    reader_speaker,
    run_capping,
)
from council.app.experiments.capping_judge import Judge, JudgeDesign, judge_design, unit_rows
from council.app.experiments.folder import PLAN_FILE, experiment_embedder, journal_lines
from council.base.errors import ConfigError
from council.meter.analysis import card_reference_text
from council.meter.binary import paired_binary, wilson
from council.meter.embedders import Embedder
from council.meter.identifiability import identifiability
from council.meter.inference import holm
from council.meter.metrics import drift_position, mean_pairwise_distance, normalised_mean
from council.personas.card import PersonaCard
from council.personas.library import find_persona
from council.records.axis import AssistantAxis

CONTINUOUS = ("activation_position", "embedding_drift", "looping", "clamped")
METRICS = ("activation_position", "embedding_drift", "left_character", "looping", "clamped")
KINDS = ("question", "breaking", "all")
PRIMARY = ("breaking", "left_character")  # the one endpoint not adjusted for multiplicity
_WORD = re.compile(r"\w+")
WILSON = "Wilson score interval (statsmodels proportion_confint); replies as independent"
CLUSTER_T = "mean of question means; t interval on the G question means (df G - 1)"
CLUSTER_TEST = "one-sample t-test on the question means of the paired differences (scipy)"


def looping(text: str) -> float:
    """Share of word trigrams that repeat an earlier trigram of the same text."""
    words = _WORD.findall(text.lower())
    grams = list(zip(words, words[1:], words[2:], strict=False))
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def _vectors(rows: Sequence[CappingReply], embedder: Embedder) -> dict[tuple[Any, ...], Any]:
    texts = [r.text or " " for r in rows]
    encoded = unit_rows(embedder.encode(texts))
    return {r.key: v for r, v in zip(rows, encoded, strict=True)}


def question_index(row: CappingReply, plan: dict[str, Any]) -> int:
    """The test question a test reply is about: a breaking prompt wraps question
    ``index % len(questions)`` (``capping.test_asks``). The cluster of the inference."""
    return row.index % len(plan["questions"]) if row.kind == "breaking" else row.index


def _question(row: CappingReply, plan: dict[str, Any], design: JudgeDesign) -> str:
    """The question a reply is about (a breaking prompt wraps one of the questions)."""
    if row.phase == "calibration":
        return str(plan["calibration"][design.calibration_prompt(row)])
    return str(plan["questions"][question_index(row, plan)])


def _without_topic(
    rows: Sequence[CappingReply],
    vectors: dict[tuple[Any, ...], Any],
    plan: dict[str, Any],
    embedder: Embedder,
    design: JudgeDesign,
) -> dict[tuple[Any, ...], Any]:
    """Each reply's embedding with the direction of its question's embedding taken out, so the
    judge compares voices rather than topics (on the bundled model's calibration replies this
    took its leave-one-out accuracy from 62% to 100%)."""
    asked = sorted({_question(r, plan, design) for r in rows})
    topics = dict(zip(asked, unit_rows(embedder.encode(asked)), strict=True))
    kept = {}
    for row in rows:
        vector, topic = vectors[row.key], topics[_question(row, plan, design)]
        kept[row.key] = unit_rows([vector - (vector @ topic) * topic])[0]
    return kept


def reply_metrics(
    rows: Sequence[CappingReply],
    cards: Sequence[PersonaCard],
    embedder: Embedder,
    plan: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One metric row per persona test reply the design scores, and the judge's accuracy."""
    design = judge_design(plan)
    vectors = _vectors(rows, embedder)
    voices = _without_topic(rows, vectors, plan, embedder, design)
    plain = [r for r in rows if r.phase == "calibration" and r.kind == "calibration"]
    # The axis scale is every plain calibration reply, the same replies that set the cap.
    low = float(np.mean([r.projection for r in plain if r.speaker != ASSISTANT]))
    high = float(np.mean([r.projection for r in plain if r.speaker == ASSISTANT]))
    trains = [r for r in rows if design.trains_judge(r)]
    judge = Judge(
        {c.name: [voices[r.key] for r in trains if r.speaker == c.name] for c in cards},
        [voices[r.key] for r in trains if r.speaker == ASSISTANT],
    )
    answers = [vectors[r.key] for r in rows if r.phase == "test" and r.speaker == ASSISTANT]
    assistant_pole = normalised_mean(np.stack(answers))
    references = unit_rows(embedder.encode([card_reference_text(c) for c in cards]))
    poles = {c.name: ref for c, ref in zip(cards, references, strict=True)}
    metrics = []
    for row in rows:
        if not design.tested(row) or row.speaker == ASSISTANT:
            continue
        vector = vectors[row.key]
        metrics.append(
            {
                "speaker": row.speaker,
                "kind": row.kind,
                "index": row.index,
                "arm": row.arm,
                "cluster": question_index(row, plan),
                "activation_position": (row.projection - low) / (high - low)
                if high != low
                else None,
                "embedding_drift": drift_position(vector, poles[row.speaker], assistant_pole),
                "left_character": float(judge.left(row.speaker, voices[row.key])),
                "looping": looping(row.text),
                "clamped": row.clamped,
                "vector": vector,
            }
        )
    return metrics, {
        **judge.accuracy(),
        "design": design.to_json(plan),
        "persona_mean_projection": round(low, 4),
        "assistant_mean_projection": round(high, 4),
    }


def _of_kind(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if kind == "all" or r["kind"] == kind]


def _diversity(rows: list[dict[str, Any]], arm: str) -> dict[tuple[str, int, int], float]:
    """Per prompt (kind, index, question), the personas' mean pairwise distance under ``arm``."""
    groups: dict[tuple[str, int, int], list[Any]] = {}
    for row in rows:
        if row["arm"] == arm:
            groups.setdefault((row["kind"], row["index"], row["cluster"]), []).append(row["vector"])
    return {key: mean_pairwise_distance(np.stack(v)) for key, v in groups.items() if len(v) >= 2}


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def cluster_estimate(by_cluster: dict[int, list[float]], *, test: bool) -> dict[str, Any]:
    """The mean of the cluster means with a t interval over clusters, and (``test``) a
    one-sample t-test of zero: the question is the unit of inference."""
    from scipy.stats import t as student
    from scipy.stats import ttest_1samp

    means = np.array([np.mean(v) for v in by_cluster.values() if v], dtype=np.float64)
    n = sum(len(v) for v in by_cluster.values())
    out: dict[str, Any] = {
        "mean": None,
        "ci95": None,
        "n": n,
        "clusters": len(means),
        "method": CLUSTER_T,
    }
    if not len(means):
        out["method"] = "no values"
        return out
    out["mean"] = _round(float(means.mean()))
    if len(means) < 2:
        out["method"] = "one question: no interval"
        return out
    spread = float(means.std(ddof=1))
    half = float(student.ppf(0.975, len(means) - 1)) * spread / math.sqrt(len(means))
    out["ci95"] = [_round(float(means.mean()) - half), _round(float(means.mean()) + half)]
    if test:
        # Every question moved alike (to rounding): no variance to test against.
        if spread <= 1e-12 * max(1.0, abs(float(means.mean()))):
            out["p_value"] = 1.0 if float(means.mean()) == 0 else None
        else:
            out["p_value"] = float(ttest_1samp(means, 0.0).pvalue)
        out["test"] = CLUSTER_TEST
    return out


def _proportion(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "ci95": None, "n": 0, "method": "no values"}
    hits = round(sum(values))
    low, high = wilson(hits, len(values))
    return {
        "mean": _round(hits / len(values)),
        "ci95": [_round(low), _round(high)],
        "n": len(values),
        "method": WILSON,
    }


def _by_cluster(rows: list[dict[str, Any]], metric: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for row in rows:
        if row[metric] is not None:
            out.setdefault(row["cluster"], []).append(float(row[metric]))
    return out


def _levels(rows: list[dict[str, Any]], diversity: dict[Any, float], kind: str) -> dict[str, Any]:
    """Each metric's level under one arm and prompt kind."""
    out = {m: cluster_estimate(_by_cluster(rows, m), test=False) for m in CONTINUOUS}
    out["left_character"] = _proportion([r["left_character"] for r in rows])
    spread: dict[int, list[float]] = {}
    for (k, _, question), value in diversity.items():
        if kind in ("all", k):
            spread.setdefault(question, []).append(value)
    out["diversity"] = cluster_estimate(spread, test=False)
    return out


def summarise_capping(
    rows: Sequence[CappingReply],
    cards: Sequence[PersonaCard],
    embedder: Embedder,
    *,
    ceiling: float,
    plan: dict[str, Any],
) -> dict[str, Any]:
    """Per arm and prompt kind, each metric with its interval; the paired differences with
    their tests; one primary endpoint, the rest Holm-adjusted."""
    metrics, judge = reply_metrics(rows, cards, embedder, plan)
    diversity = {arm: _diversity(metrics, arm) for arm in ("free", "capped")}
    arms: dict[str, Any] = {}
    differences: dict[str, Any] = {}
    for kind in KINDS:
        chosen = _of_kind(metrics, kind)
        for arm in ("free", "capped"):
            mine = [r for r in chosen if r["arm"] == arm]
            arms.setdefault(arm, {})[kind] = _levels(mine, diversity[arm], kind)
        differences[kind] = _paired(chosen, diversity, kind)
    summary = {
        "plan": plan,
        "ceiling": round(ceiling, 4),
        "judge": judge,
        "replies": len(metrics),
        "arms": arms,
        "differences": differences,
        "identifiability": {arm: _identifiable(metrics, arm) for arm in ("free", "capped")},
    }
    summary["multiplicity"] = adjust_for_multiplicity(summary)
    return summary


def _identifiable(metrics: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    """Can the personas' replies under ``arm`` be told apart by who gave them? Blocked by
    prompt, so a persona is told from the others answering the same prompt."""
    mine = [r for r in metrics if r["arm"] == arm]
    result = identifiability(
        np.stack([r["vector"] for r in mine]),
        [r["speaker"] for r in mine],
        blocks=[(r["kind"], r["index"]) for r in mine],
        of="persona",
        detail=arm,
    )
    return result.to_json()


def _paired(
    chosen: list[dict[str, Any]], diversity: dict[str, dict[Any, float]], kind: str
) -> dict[str, Any]:
    """Capped minus free for each metric, paired by persona and prompt (diversity by prompt):
    continuous metrics on question means, the 0/1 judge exactly."""
    by_key = {(r["speaker"], r["kind"], r["index"], r["arm"]): r for r in chosen}
    pairs = [
        (by_key[(s, k, i, "free")], r)
        for (s, k, i, arm), r in by_key.items()
        if arm == "capped" and (s, k, i, "free") in by_key
    ]
    out: dict[str, Any] = {}
    for metric in CONTINUOUS:
        spread: dict[int, list[float]] = {}
        for free, capped in pairs:
            if capped[metric] is not None and free[metric] is not None:
                spread.setdefault(free["cluster"], []).append(capped[metric] - free[metric])
        out[metric] = cluster_estimate(spread, test=True)
    out["left_character"] = _binary(pairs)
    loose, held = diversity["free"], diversity["capped"]
    by_question: dict[int, list[float]] = {}
    for key in loose:
        if key in held and kind in ("all", key[0]):
            by_question.setdefault(key[2], []).append(held[key] - loose[key])
    out["diversity"] = cluster_estimate(by_question, test=True)
    return out


def _binary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Left character free against capped: exact McNemar and Newcombe's interval."""
    if not pairs:
        return {"mean": None, "ci95": None, "n": 0, "method": "no pairs"}
    result = paired_binary(
        [int(f["left_character"]) for f, _ in pairs], [int(c["left_character"]) for _, c in pairs]
    )
    data = result.to_json()
    return {
        "mean": data["difference"],
        "ci95": [data["low"], data["high"]],
        "n": result.n_pairs,
        "clusters": len({f["cluster"] for f, _ in pairs}),
        "method": result.interval_method,
        "p_value": result.p_value,
        "test": result.test_method,
        "free": data["before"],
        "capped": data["after"],
        "b": result.b,
        "c": result.c,
        "note": "b: left character free but not capped; c: the reverse; the test treats "
        "pairs as independent although they fall in the questions counted in clusters",
    }


def adjust_for_multiplicity(summary: dict[str, Any]) -> dict[str, Any]:
    """Label the primary endpoint and Holm-adjust every other p-value, in place: each entry
    with a p-value gains ``role`` and ``adjusted_p`` (``None`` for the primary)."""
    primary = summary["differences"].get(PRIMARY[0], {}).get(PRIMARY[1], {})
    entries: list[dict[str, Any]] = []
    for metrics in summary["differences"].values():
        entries += [e for e in metrics.values() if "p_value" in e and e is not primary]
    entries += [e for e in summary["identifiability"].values() if e.get("p_value") is not None]
    tested = [e for e in entries if e.get("p_value") is not None]
    for entry, adjusted in zip(tested, holm([e["p_value"] for e in tested]), strict=True):
        entry["role"], entry["adjusted_p"] = "secondary", round(adjusted, 6)
    for entry in entries:
        entry.setdefault("role", "secondary")
        entry.setdefault("adjusted_p", None)
        if entry.get("p_value") is not None:
            entry["p_value"] = round(entry["p_value"], 6)
    if "p_value" in primary:
        primary["role"], primary["adjusted_p"] = "primary", None
        primary["p_value"] = round(primary["p_value"], 6)
    return {
        "primary": f"differences.{PRIMARY[0]}.{PRIMARY[1]}" if "p_value" in primary else None,
        "primary_p": primary.get("p_value"),
        "secondary": len(tested),
        "adjustment": "Holm (statsmodels multipletests) over every secondary p-value; the "
        "primary endpoint is tested at 0.05 unadjusted",
    }


def _p(entry: dict[str, Any]) -> tuple[str, str]:
    """(p, Holm-adjusted p or 'primary') as printed."""
    p = entry.get("p_value")
    if p is None:
        return "n/a", ""
    if entry.get("role") == "primary":
        return f"{p:.3g}", "primary"
    adjusted = entry.get("adjusted_p")
    return f"{p:.3g}", "" if adjusted is None else f"{adjusted:.3g}"


def _judge_lines(judge: dict[str, Any]) -> list[str]:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    lines = [
        f"judge: balanced accuracy {pct(judge.get('balanced_accuracy'))} (in character kept "
        f"{pct(judge.get('in_character_recall'))} of {judge.get('persona_replies')} persona "
        f"replies, out of character caught {pct(judge.get('out_of_character_recall'))} of "
        f"{judge.get('assistant_replies')} assistant replies; {judge.get('method')})",
    ]
    design = judge.get("design")
    if design:
        lines.append(
            f"judge calibrated on {len(design['calibration'])} calibration prompts and "
            f"{len(design['judge_breaking'])} breaking prompts the test never asks; tested on "
            f"{len(design['test_breaking'])} breaking prompts"
        )
        for dropped in design["calibration_left_out"]:
            lines.append(
                f"  left out of the judge: '{dropped['prompt']}' (nearly repeats "
                f"'{dropped['nearly_repeats']}')"
            )
        if design.get("note"):
            lines.append(f"  {design['note']}")
    return lines


def capping_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a plain table: one line per metric and prompt kind, the primary endpoint
    first and every other p-value beside its Holm adjustment."""

    def cell(estimate: dict[str, Any]) -> str:
        if estimate.get("mean") is None:
            return "n/a"
        ci = estimate.get("ci95")
        return f"{estimate['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")

    lines = [
        f"cap: projection <= {summary['ceiling']:+.3f} at every position "
        f"({summary['plan']['percentile']:g}th percentile of the persona calibration replies)",
        *_judge_lines(summary["judge"]),
    ]
    primary = summary["differences"].get(PRIMARY[0], {}).get(PRIMARY[1], {})
    if primary.get("p_value") is not None:
        lines.append(
            f"primary: left character on persona-breaking prompts, capped - free "
            f"{cell(primary)} ({primary['n']} pairs, {primary['b']} left only free, "
            f"{primary['c']} only capped; {primary['test']}, p {primary['p_value']:.3g}; "
            f"{primary['method']})"
        )
    lines.append(
        f"{'metric':22} {'prompts':9} {'free':26} {'capped':26} {'capped - free':26} "
        f"{'p':>8} {'Holm p':>8}"
    )
    for metric, kind in itertools.product((*METRICS, "diversity"), KINDS):
        free = summary["arms"]["free"][kind][metric]
        capped = summary["arms"]["capped"][kind][metric]
        diff = summary["differences"][kind][metric]
        p, adjusted = _p(diff)
        lines.append(
            f"{metric:22} {kind:9} {cell(free):26} {cell(capped):26} {cell(diff):26} "
            f"{p:>8} {adjusted:>8}"
        )
    for arm, result in summary.get("identifiability", {}).items():
        if result.get("accuracy") is not None:
            p, adjusted = _p(result)
            lines.append(
                f"identifiability ({arm}): persona from reply {result['accuracy']:.3f} "
                f"(shuffled {result['null_mean']:.3f}, p {p}, Holm p {adjusted}, "
                f"{result['samples']} replies)"
            )
    multiplicity = summary.get("multiplicity")
    if multiplicity:
        lines.append(
            f"multiplicity: {multiplicity['secondary']} secondary p-values, "
            f"{multiplicity['adjustment']}"
        )
    lines.append(f"continuous metrics: {CLUSTER_T}; {CLUSTER_TEST}. left_character: {WILSON}")
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
            raise ConfigError(
                f"the axis {axis.axis_id} was built on other weights than "
                f"{plan.model}: rebuild it with 'council axis build'"
            )
        speaker = reader_speaker(reader, axis)
    rows, ceiling = run_capping(plan, cards, speaker, out, progress=progress)
    model = experiment_embedder(embedder, out)
    summary = summarise_capping(rows, cards, model, ceiling=ceiling, plan=plan.to_json())
    summary["embedder"] = model.name
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, allow_nan=False), encoding="utf-8")
    return summary


def read_capping(out: Path) -> tuple[dict[str, Any], list[CappingReply]]:
    """A capping folder's plan.json (as written, whatever its vintage) and journalled replies."""
    plan_path = out / PLAN_FILE
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{plan_path}: cannot read the plan: {exc}") from None
    path = out / JOURNAL
    rows = {}
    for number, line in journal_lines(path):
        row = _journal_row(line, path, number)
        rows[row.key] = row
    return plan, list(rows.values())


def resummarise_capping(out: Path, *, embedder: str | Embedder | None = None) -> dict[str, Any]:
    """Summarise a finished capping folder again from its journal, generating nothing (no
    model is loaded): the cap is recomputed from the calibration replies as the run did, and
    a plan from before the judge's split is re-analysed by ``judge_design``. Writes and
    returns ``summary.json``."""
    plan, rows = read_capping(out)
    cards = [find_persona(name) for name in plan["personas"]]
    model = experiment_embedder(embedder, out)
    ceiling = cap_ceiling(rows, float(plan["percentile"]))
    summary = summarise_capping(rows, cards, model, ceiling=ceiling, plan=plan)
    summary["embedder"] = model.name
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, allow_nan=False), encoding="utf-8")
    return summary
