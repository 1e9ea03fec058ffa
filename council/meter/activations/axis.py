"""The assistant axis of an open-weight model, by contrast of means, stored with provenance.

For a fixed set of prompts the model answers as the default assistant (under a few plain
system prompts) and as each of some shipped persona cards; each reply is reduced to its mean
residual activation per layer (``backend.ActivationReader``). The axis at a layer is the mean
of the assistant replies minus the mean of the persona replies (the cited work's method), so a
larger projection means "more the default Assistant". How well it separates is measured on
held-out prompts *and* held-out speakers on both sides: the axis is fitted on the
even-numbered prompts, the even-numbered plain system prompts and the first half of the
personas, and scored (AUC with a score interval) on the odd-numbered prompts answered under
the other system prompts and by the other personas, so no question, system prompt or persona
both trains and tests. The stored axis is then refitted on every sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from council.base.errors import ConfigError
from council.meter.activations.stats import auc, auc_interval, contrast_of_means, project, unit
from council.personas.card import PersonaCard
from council.personas.prompt import system_prompt
from council.records.axis import (
    AssistantAxis,
    AxisSample,
    PersonaVector,
)

# Questions of the kind a council is asked, none of them leading toward a persona.
DEFAULT_PROMPTS = (
    "Should a small town replace its library with a digital lending service?",
    "Is it wise for a company to let everyone work from home permanently?",
    "How should a city decide whether to build a new bridge or repair the old one?",
    "Should schools teach programming before they teach handwriting?",
    "What should a family weigh before moving to another country?",
    "Is it better to save money or to pay off a loan early?",
    "Should a hospital use an algorithm to decide who is seen first?",
    "How should a small team choose between two competing product ideas?",
)
# A plain assistant prompt as long as a persona card (about 450 words), so that the axis cannot
# be told apart from "a long system prompt is present" by length alone.
LONG_ASSISTANT_SYSTEM = " ".join(
    [
        "You are a helpful AI assistant. Your purpose is to answer the user's questions clearly,"
        " accurately and usefully. You have no personal history, no name beyond assistant, and"
        " no particular school of thought: you are the same assistant for every user.",
    ]
    + [
        "When a question is asked, read it carefully and work out what the user needs. Give the"
        " answer first, then the reasons that support it, then any caveats that matter. Prefer"
        " plain words to jargon. Keep answers short when a short answer will do, and longer"
        " when the question needs detail. When a question has several reasonable answers, set"
        " out the main options fairly and say which one you would choose and why. When you do"
        " not know something, say so, and suggest how the user could find out. Do not invent"
        " facts, numbers, quotations or sources. Be polite and calm, and treat every user with"
        " respect. Avoid taking sides on matters of personal taste; on questions of fact,"
        " follow the best available evidence. Check your reasoning before you answer, and"
        " correct yourself if you notice a mistake.",
    ]
    * 3
)
# The default assistant: the model's own default (no system prompt), two short plain prompts,
# and a plain one as long as a card.
ASSISTANT_SYSTEMS = (
    "",
    "You are a helpful assistant.",
    "You are an AI assistant. Answer clearly.",
    LONG_ASSISTANT_SYSTEM,
)
# Three of the shipped polarity pairs, one pole of each in each half (fitted, held out), so
# persona vectors can be taken along the pairs too.
DEFAULT_PERSONAS = ("socrates", "taleb", "hayek", "machiavelli", "meadows", "keynes")


@dataclass(frozen=True)
class Sample:
    side: Literal["assistant", "persona"]
    speaker: str
    prompt: int
    reply: str
    layer_means: Any  # (layers + 1, hidden size)


Respond = Callable[[list[dict[str, str]], int], tuple[str, Any]]


def collect_samples(
    respond: Respond,
    cards: Sequence[PersonaCard],
    prompts: Sequence[str],
    *,
    reply_tokens: int,
    systems: Sequence[str] = ASSISTANT_SYSTEMS,
    progress: Callable[[int, int], None] | None = None,
) -> list[Sample]:
    """Every prompt answered under every plain system prompt and as every persona card.
    ``respond(messages, max_new_tokens)`` returns the reply and its per-layer means."""
    plan: list[tuple[Literal["assistant", "persona"], str, str]] = [
        ("assistant", f"assistant#{i}", system) for i, system in enumerate(systems)
    ]
    total = len(prompts) * (len(systems) + len(cards))
    samples: list[Sample] = []
    for index, prompt in enumerate(prompts):
        conditions = [*plan, *(("persona", c.name, system_prompt(c, prompt)) for c in cards)]
        for side, speaker, system in conditions:
            messages = [{"role": "user", "content": prompt}]
            if system:
                messages.insert(0, {"role": "system", "content": system})
            reply, means = respond(messages, reply_tokens)
            samples.append(Sample(side, speaker, index, reply, np.asarray(means)))
            if progress is not None:
                progress(len(samples), total)
    return samples


def _system(speaker: str) -> int:
    """The plain system prompt's number in an assistant speaker's name, ``assistant#<n>``."""
    return int(speaker.rpartition("#")[2])


def split_samples(
    samples: Sequence[Sample], personas: Sequence[str]
) -> tuple[list[bool], list[bool]]:
    """(fitted, held out) flags. Fitted: even-numbered prompts, answered under an
    even-numbered plain system prompt or by a persona of the first half; held out:
    odd-numbered prompts, answered under an odd-numbered system prompt or by a persona of the
    second half. The assistant side is split by system prompt as well as by prompt, so that
    the score is not the same system prompt recognised again; replies that would mix a fitted
    speaker with a held-out prompt (or the reverse) are in neither."""
    test_personas = set(personas[(len(personas) + 1) // 2 :])
    fitted, held = [], []
    for s in samples:
        # A held-out speaker: an odd-numbered system prompt, or a persona of the second half.
        assistant = s.side == "assistant"
        novel = _system(s.speaker) % 2 == 1 if assistant else s.speaker in test_personas
        fitted.append(s.prompt % 2 == 0 and not novel)
        held.append(s.prompt % 2 == 1 and novel)
    return fitted, held


def held_out_design(samples: Sequence[Sample], held: Sequence[bool]) -> dict[str, Any]:
    """What the held-out AUC rests on, counted from the samples themselves: how many replies
    on each side, and which prompts, system prompts and personas they came from."""
    test = [s for s, h in zip(samples, held, strict=True) if h]
    return {
        "assistant": sum(1 for s in test if s.side == "assistant"),
        "persona": sum(1 for s in test if s.side == "persona"),
        "prompts": sorted({s.prompt for s in test}),
        "assistant_systems": sorted({_system(s.speaker) for s in test if s.side == "assistant"}),
        "personas": sorted({s.speaker for s in test if s.side == "persona"}),
        "split": "fitted on even prompts, even system prompts and the first half of the "
        "personas; scored on odd prompts under odd system prompts and the other personas",
    }


def _fit(samples: Sequence[Sample], layer: int) -> tuple[Any, Any]:
    assistant = np.stack([s.layer_means[layer] for s in samples if s.side == "assistant"])
    persona = np.stack([s.layer_means[layer] for s in samples if s.side == "persona"])
    direction = unit(contrast_of_means(assistant, persona))
    origin = (assistant.mean(axis=0) + persona.mean(axis=0)) / 2
    return direction, origin


def held_out_scores(
    samples: Sequence[Sample], personas: Sequence[str], layer: int
) -> tuple[list[float], list[float]]:
    """Projections of the held-out assistant and persona replies on an axis fitted on the
    other half (prompts and personas it never saw)."""
    fitted, held = split_samples(samples, personas)
    train = [s for s, f in zip(samples, fitted, strict=True) if f]
    test = [s for s, h in zip(samples, held, strict=True) if h]
    sides = {s.side for s in train} & {s.side for s in test}
    if sides != {"assistant", "persona"}:
        raise ConfigError(
            "too few prompts, system prompts or personas to hold any out: use at least 2 of each"
        )
    direction, origin = _fit(train, layer)
    scores = project(np.stack([s.layer_means[layer] for s in test]), direction, origin)
    assistant = [v for v, s in zip(scores, test, strict=True) if s.side == "assistant"]
    persona = [v for v, s in zip(scores, test, strict=True) if s.side == "persona"]
    return assistant, persona


PERSONA_AUC_METHOD = (
    "leave one prompt out: each reply projected on the pair's direction fitted on the other "
    "prompts (from their poles' midpoint); AUC pooled over every held-out reply"
)


def _cross_fitted(ones: Sequence[Sample], twos: Sequence[Sample], layer: int) -> float:
    """Held-out AUC of the first pole over the second, each prompt left out in turn."""
    first: list[float] = []
    second: list[float] = []
    for prompt in sorted({s.prompt for s in (*ones, *twos)}):
        fit = [
            np.stack([s.layer_means[layer] for s in group if s.prompt != prompt])
            for group in (ones, twos)
        ]
        direction = contrast_of_means(*fit)
        origin = (fit[0].mean(axis=0) + fit[1].mean(axis=0)) / 2
        for group, scores in ((ones, first), (twos, second)):
            held = [s.layer_means[layer] for s in group if s.prompt == prompt]
            if held:
                scores.extend(project(np.stack(held), direction, origin).tolist())
    return auc(first, second)


def persona_vectors(
    samples: Sequence[Sample], cards: Sequence[PersonaCard], layer: int, axis: Any
) -> list[PersonaVector]:
    """One vector per polarity pair whose poles were both sampled on at least 2 prompts (cards
    declare the pairs)."""
    names = {c.name for c in cards}
    pairs = sorted(
        {
            tuple(sorted((c.name, other)))
            for c in cards
            for other in c.fields.polarity_pairs or ()
            if other in names
        }
    )
    vectors = []
    for first, second in pairs:
        ones = [s for s in samples if s.speaker == first]
        twos = [s for s in samples if s.speaker == second]
        if len({s.prompt for s in ones}) < 2 or len({s.prompt for s in twos}) < 2:
            continue  # nothing to fit on once a prompt is left out
        direction = unit(
            contrast_of_means(
                np.stack([s.layer_means[layer] for s in ones]),
                np.stack([s.layer_means[layer] for s in twos]),
            )
        )
        vectors.append(
            PersonaVector(
                pair=(first, second),
                direction=[float(v) for v in direction],
                held_out_auc=round(_cross_fitted(ones, twos, layer), 4),
                samples=len(ones) + len(twos),
                axis_cosine=round(float(direction @ axis), 4),
                held_out_per_side=min(len(ones), len(twos)),
                auc_method=PERSONA_AUC_METHOD,
            )
        )
    return vectors


def axis_from_samples(
    samples: Sequence[Sample],
    *,
    model: str,
    model_sha256: str,
    layer: int,
    prompts: Sequence[str],
    cards: Sequence[PersonaCard],
    reply_tokens: int,
    systems: Sequence[str] = ASSISTANT_SYSTEMS,
) -> AssistantAxis:
    """Fit the axis on every sample; score it (and every other layer) on the held-out half."""
    layers = len(samples[0].layer_means)
    if not 0 < layer < layers:
        raise ConfigError(f"layer {layer} is out of range: this model has 1..{layers - 1}")
    names = [c.name for c in cards]
    held = split_samples(samples, names)[1]
    interval = auc_interval(*held_out_scores(samples, names, layer)).bounds_json()
    interval["held_out"] = held_out_design(samples, held)
    by_layer = {i: round(auc(*held_out_scores(samples, names, i)), 4) for i in range(1, layers)}
    direction, origin = _fit(samples, layer)
    projections = project(np.stack([s.layer_means[layer] for s in samples]), direction, origin)
    sides = np.array([s.side == "assistant" for s in samples])
    return AssistantAxis(
        model=model,
        model_sha256=model_sha256,
        layer=layer,
        num_layers=layers - 1,
        hidden_size=len(direction),
        direction=[float(v) for v in direction],
        origin=[float(v) for v in origin],
        assistant_projection=float(projections[sides].mean()),
        persona_projection=float(projections[~sides].mean()),
        prompts=list(prompts),
        assistant_systems=list(systems),
        personas={c.name: c.content_hash for c in cards},
        reply_tokens=reply_tokens,
        samples=[
            AxisSample(
                side=s.side,
                speaker=s.speaker,
                prompt=s.prompt,
                held_out=h,
                projection=round(float(p), 4),
                reply=s.reply,
            )
            for s, h, p in zip(samples, held, projections, strict=True)
        ],
        held_out_auc=interval,
        layer_auc=by_layer,
        persona_vectors=persona_vectors(samples, cards, layer, direction),
    )


def build_axis(
    reader: Any,
    cards: Sequence[PersonaCard],
    *,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    layer: int | None = None,
    reply_tokens: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> AssistantAxis:
    """Generate the samples with a ``backend.ActivationReader`` and fit its model's axis."""
    model = reader.bundled.model_string
    start = time.perf_counter()

    def respond(messages: list[dict[str, str]], tokens: int) -> tuple[str, Any]:
        reply = reader.respond(messages, max_new_tokens=tokens)
        return reply.text, reply.layer_means

    samples = collect_samples(respond, cards, prompts, reply_tokens=reply_tokens, progress=progress)
    chosen = layer if layer is not None else reader.num_layers // 2
    axis = axis_from_samples(
        samples,
        model=model,
        model_sha256=reader.sha256,
        layer=chosen,
        prompts=prompts,
        cards=cards,
        reply_tokens=reply_tokens,
    )
    return axis.model_copy(update={"build_seconds": round(time.perf_counter() - start, 1)})
