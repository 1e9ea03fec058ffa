"""What recording activations, and capping, cost per turn on the bundled model in PyTorch.

Plain generation (no hidden states kept), recording (every hidden state kept, the reply's mean
taken at every layer and one layer kept per position) and capped (recording, with a forward
hook clamping the axis component) answer the same prompts greedily, interleaved so that load
on the machine falls on all three alike. Every figure is a ratio against plain generation in
the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

PROMPTS = (
    "Should cities ban private cars from their centres?",
    "Should a small town replace its public library with a digital lending service?",
    "Should a government guarantee every adult a basic income?",
)


def activations(tokens: int = 48, repeats: int = 2) -> dict[str, Any]:
    from council.personas.library import find_persona
    from council.personas.prompt import system_prompt
    from council.seats.activations.backend import Cap, shared_reader

    reader = shared_reader("smollm2-135m-instruct")
    start = time.perf_counter()
    reader.load()
    load_s = time.perf_counter() - start
    middle = reader.num_layers // 2
    direction = np.zeros(reader.hidden_size)
    direction[0] = 1.0
    cap = Cap(middle, tuple(direction), tuple(np.zeros(reader.hidden_size)), 0.0)
    card = find_persona("popper")
    modes: dict[str, dict[str, Any]] = {
        "plain": {"record": False},
        "recording": {"record": True, "keep_layer": middle},
        "capped": {"record": True, "keep_layer": middle, "cap": cap},
    }
    rates: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(repeats):
        for prompt in PROMPTS:
            messages = [
                {"role": "system", "content": system_prompt(card, prompt)},
                {"role": "user", "content": prompt},
            ]
            for name, options in modes.items():
                reply = reader.respond(messages, max_new_tokens=tokens, **options)
                rates[name].append(reply.completion_tokens / reply.seconds)
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "load_seconds": round(load_s, 1),
        "plain_tokens_per_second": round(median["plain"], 2),
        "recording_tokens_per_second": round(median["recording"], 2),
        "capped_tokens_per_second": round(median["capped"], 2),
        "recording_over_plain": round(median["recording"] / median["plain"], 3),
        "capped_over_plain": round(median["capped"] / median["plain"], 3),
        "replies_per_mode": len(rates["plain"]),
    }
