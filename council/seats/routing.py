"""Polarity-aware seating: opposing personas sit on different model families.

Personas on one model share its training data and blind spots; seating the two members of a
polarity pair on different families is the engineering answer to that ceiling. The family of a
model string is its maker, not its router: ``openrouter/anthropic/claude-3.5-haiku`` and
``bedrock/anthropic.claude-3-haiku`` are both anthropic, ``groq/llama-3.1-8b-instant`` is meta.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from council.personas.card import PersonaCard

# Providers that serve one maker's models.
_PROVIDER_FAMILY = {
    "openai": "openai", "azure": "openai", "azure_ai": "openai", "text-completion-openai": "openai",
    "anthropic": "anthropic", "gemini": "google", "vertex_ai": "google", "palm": "google",
    "mistral": "mistral", "codestral": "mistral", "cohere": "cohere", "cohere_chat": "cohere",
    "deepseek": "deepseek", "xai": "xai", "perplexity": "perplexity", "ai21": "ai21",
    "dashscope": "qwen", "moonshot": "moonshot",
}  # fmt: skip
# Model-name fragments that reveal the maker behind routers and local servers.
_NAME_FAMILY = [
    ("claude", "anthropic"), ("gpt", "openai"), ("o1", "openai"), ("o3", "openai"),
    ("o4", "openai"), ("gemini", "google"), ("gemma", "google"), ("llama", "meta"),
    ("mixtral", "mistral"), ("mistral", "mistral"), ("codestral", "mistral"),
    ("qwen", "qwen"), ("deepseek", "deepseek"), ("phi", "microsoft"), ("command", "cohere"),
    ("grok", "xai"), ("smollm", "huggingface"), ("granite", "ibm"), ("olmo", "allenai"),
    # Subscription CLIs and their aliases (command seats, ``cli/codex``, ``cli/claude:opus``).
    ("codex", "openai"), ("sonnet", "anthropic"), ("opus", "anthropic"), ("haiku", "anthropic"),
]  # fmt: skip
_ROUTERS = ("openrouter", "together_ai", "fireworks_ai", "deepinfra")
_VENDOR_ALIASES = {"meta-llama": "meta", "mistralai": "mistral", "x-ai": "xai"}


def model_family(model: str) -> str:
    """The maker of the model behind a litellm model string."""
    provider, _, rest = model.partition("/")
    if provider in _PROVIDER_FAMILY and not _names_other_maker(provider, rest):
        return _PROVIDER_FAMILY[provider]
    if provider in _ROUTERS and "/" in rest:
        vendor = rest.split("/")[0].lower()
        if vendor not in ("accounts", "models"):
            return _VENDOR_ALIASES.get(vendor, vendor)
    name = rest.lower()
    for fragment, family in _NAME_FAMILY:
        if re.search(rf"(^|[^a-z]){re.escape(fragment)}", name):
            return family
    return provider


def _names_other_maker(provider: str, rest: str) -> bool:
    # "openai/llama3" is an OpenAI-compatible server running someone else's model.
    if provider != "openai":
        return False
    return any(
        re.search(rf"(^|[^a-z]){re.escape(fragment)}", rest.lower()) and family != "openai"
        for fragment, family in _NAME_FAMILY
    )


@dataclass(frozen=True)
class SeatChoice:
    persona: str
    model: str
    family: str
    reason: str


def polarity_graph(cards: Sequence[PersonaCard]) -> nx.Graph:
    graph: nx.Graph = nx.Graph()
    names = {card.name for card in cards}
    graph.add_nodes_from(names)
    for card in cards:
        for other in card.fields.polarity_pairs:
            if other in names:
                graph.add_edge(card.name, other)
    return graph


def route(cards: Sequence[PersonaCard], models: Sequence[str]) -> list[SeatChoice]:
    """Give each persona a model so every polarity pair sits on two different families.

    Greedy colouring, most-opposed personas first: a persona takes the family its card's
    ``provider_affinity`` names when its opponents left that family free, else the least-used
    free family. With fewer families than a pair needs, the clash is said in the reason.
    """
    if not models:
        raise ValueError("routing needs at least one model")
    by_family: dict[str, list[str]] = {}
    for model in models:
        by_family.setdefault(model_family(model), []).append(model)
    families = list(by_family)
    graph = polarity_graph(cards)
    position = {card.name: i for i, card in enumerate(cards)}
    affinity_of = {card.name: card.fields.provider_affinity for card in cards}
    chosen: dict[str, str] = {}
    reasons: dict[str, str] = {}
    use: Counter[str] = Counter()
    for name in sorted(position, key=lambda n: (-graph.degree(n), position[n])):
        opponents = sorted(graph.neighbors(name))
        taken = {chosen[o] for o in opponents if o in chosen}
        free = [f for f in families if f not in taken]
        liked = [f for f in affinity_of[name] if f in free]
        if liked:
            family, why = liked[0], f"provider affinity {liked[0]}"
        elif free:
            family = min(free, key=lambda f: (use[f], families.index(f)))
            why = "least-used family" if len(free) > 1 else "only family left"
        else:
            family = min(families, key=lambda f: (use[f], families.index(f)))
            why = f"could not separate from {', '.join(opponents)}: only {len(families)} families"
        placed = [f"{o} ({chosen[o]})" for o in opponents if o in chosen]
        if free and placed:
            why += "; apart from its opponent " + ", ".join(placed)
        chosen[name], reasons[name] = family, why
        use[family] += 1
    # Several seats on one family take its models in turn.
    turn: Counter[str] = Counter()
    choices = []
    for card in cards:
        family = chosen[card.name]
        model = by_family[family][turn[family] % len(by_family[family])]
        turn[family] += 1
        choices.append(SeatChoice(card.name, model, family, reasons[card.name]))
    return choices


def chair_model(pool: Sequence[str], panel_models: Sequence[str]) -> tuple[str, str] | None:
    """The chair's model from a pool: the first (pools list the strongest first) of a family
    no panel seat is on, so the chair judges with eyes the panel does not share."""
    used = {model_family(m) for m in panel_models}
    for model in pool:
        family = model_family(model)
        if family not in used:
            return model, f"chair: the pool's first model of a family not on the panel ({family})"
    if pool:
        return pool[0], "chair: every family of the pool is on the panel; the pool's first model"
    return None


def chair_fallback(pool: Sequence[str], chair: str, panel_models: Sequence[str]) -> str | None:
    """The model a failed chair falls back to: the pool's first of another family than the
    chair's own (one the panel is not on, where there is one); None when the pool has none."""
    own = model_family(chair)
    others = [m for m in pool if model_family(m) != own]
    used = {model_family(m) for m in panel_models}
    fresh = [m for m in others if model_family(m) not in used]
    found = fresh or others
    return found[0] if found else None
