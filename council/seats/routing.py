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
    """Give each persona a model: spread evenly over the pool's families, every polarity pair
    on two different families, each persona on a family its card's ``provider_affinity``
    prefers where the first two allow.

    The spread is hard: with M seats on N families each family takes floor(M/N) or
    ceil(M/N) of them (nyk's rule; one family cannot carry the panel's blind spots). Pair
    separation is hard within it: a clash is accepted only where no even spread avoids it,
    and is said in the reason. Affinity only breaks ties (see ``_Search``).
    """
    if not models:
        raise ValueError("routing needs at least one model")
    by_family: dict[str, list[str]] = {}
    for model in models:
        by_family.setdefault(model_family(model), []).append(model)
    families = list(by_family)
    graph = polarity_graph(cards)
    chosen = _Search(cards, families, graph).best()
    low, high = divmod(len(cards), len(families))[0], -(-len(cards) // len(families))
    spread = f"{low}" if low == high else f"{low}-{high}"
    # Several seats on one family take its models in turn.
    turn: Counter[str] = Counter()
    choices = []
    for card in cards:
        family = chosen[card.name]
        model = by_family[family][turn[family] % len(by_family[family])]
        turn[family] += 1
        why = _reason(card, family, chosen, graph, len(families), spread)
        choices.append(SeatChoice(card.name, model, family, why))
    return choices


def _reason(
    card: PersonaCard,
    family: str,
    chosen: dict[str, str],
    graph: nx.Graph,
    n_families: int,
    spread: str,
) -> str:
    affinity = card.fields.provider_affinity
    if family in affinity:
        why = f"provider affinity {family}"
    else:
        why = f"even spread ({spread} seats on each of {n_families} families)"
    opponents = sorted(graph.neighbors(card.name))
    apart = [f"{o} ({chosen[o]})" for o in opponents if chosen[o] != family]
    clash = [o for o in opponents if chosen[o] == family]
    if apart:
        why += "; apart from its opponent " + ", ".join(apart)
    if clash:
        why += (
            f"; could not separate from {', '.join(clash)}: only {n_families} "
            f"{'family' if n_families == 1 else 'families'} under an even spread"
        )
    return why


class _Search:
    """Branch and bound over seatings: the fewest clashing pairs first, then the least
    affinity cost (0 for a card's first choice, its rank for a later one, the list's length
    for a family it does not list), with every family's count held to floor or ceil of M/N.

    Members go most-opposed first and try families in order of cost, so the first complete
    seating is already good; the node budget bounds the worst case (a large panel whose
    pairs cannot all be separated), where the best seating found so far is kept."""

    NODE_BUDGET = 10_000

    def __init__(self, cards: Sequence[PersonaCard], families: list[str], graph: nx.Graph):
        self.families = families
        self.graph = graph
        position = {card.name: i for i, card in enumerate(cards)}
        self.order = sorted(position, key=lambda n: (-graph.degree(n), position[n]))
        self.cost = {card.name: _affinity_costs(card, families) for card in cards}
        self.only_cheapest: dict[str, str | None] = {}
        for name, costs in self.cost.items():
            cheapest = [f for f in families if costs[f] == min(costs.values())]
            self.only_cheapest[name] = cheapest[0] if len(cheapest) == 1 else None
        # The least cost the members from index i on can still add: the bound's optimism.
        self.floor_after = [0] * (len(self.order) + 1)
        for i in range(len(self.order) - 1, -1, -1):
            self.floor_after[i] = self.floor_after[i + 1] + min(self.cost[self.order[i]].values())
        # Families no card tells apart are interchangeable: while both are empty, seating a
        # member on the second repeats the search already made on the first.
        column = {f: tuple(self.cost[n][f] for n in self.order) for f in families}
        self.twin_before = {
            f: [g for g in families[: families.index(f)] if column[g] == column[f]]
            for f in families
        }
        self.low, self.extra = divmod(len(cards), len(families))  # `extra` families take low+1
        self.use = dict.fromkeys(families, 0)
        self.seated: dict[str, str] = {}
        self.best_seating: dict[str, str] | None = None
        self.best_score = (len(cards) ** 2 + 1, 0)
        self.nodes = 0

    def best(self) -> dict[str, str]:
        self._place(0, 0, 0)
        assert self.best_seating is not None  # an even spread always exists
        return self.best_seating

    def _fits(self, family: str, left: int) -> bool:
        count = self.use[family] + 1
        at_high = sum(1 for f in self.families if self.use[f] > self.low)
        if count > self.low + 1 or (count == self.low + 1 and at_high >= self.extra):
            return False
        # The members left after this one must still bring every family up to `low`.
        short = sum(max(0, self.low - self.use[f] - (f == family)) for f in self.families)
        return short <= left - 1

    def _overflow(self, start: int) -> int:
        """A lower bound on the cost the members from ``start`` on pay beyond their cheapest:
        those with one cheapest family cannot all fit on it once it is (nearly) full."""
        wanting: Counter[str] = Counter(
            f for n in self.order[start:] if (f := self.only_cheapest[n]) is not None
        )
        return sum(max(0, k - (self.low + 1 - self.use[f])) for f, k in wanting.items())

    def _place(self, index: int, clashes: int, cost: int) -> None:
        self.nodes += 1
        if index == len(self.order):
            if (clashes, cost) < self.best_score:
                self.best_score, self.best_seating = (clashes, cost), dict(self.seated)
            return
        name = self.order[index]
        left = len(self.order) - index
        rest = self.floor_after[index + 1] + self._overflow(index + 1)
        opponents = [self.seated[o] for o in self.graph.neighbors(name) if o in self.seated]
        options = []
        for family in self.families:
            empty_twin = any(self.use[g] == 0 for g in self.twin_before[family])
            if self._fits(family, left) and not (empty_twin and self.use[family] == 0):
                extra = opponents.count(family)
                options.append((clashes + extra, cost + self.cost[name][family], family))
        for new_clashes, new_cost, family in sorted(options):
            if (new_clashes, new_cost + rest) >= self.best_score:
                continue
            if self.nodes > self.NODE_BUDGET and self.best_seating is not None:
                return
            self.seated[name] = family
            self.use[family] += 1
            self._place(index + 1, new_clashes, new_cost)
            self.use[family] -= 1
            del self.seated[name]


def _affinity_costs(card: PersonaCard, families: list[str]) -> dict[str, int]:
    affinity = card.fields.provider_affinity
    return {f: affinity.index(f) if f in affinity else len(affinity) for f in families}


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
