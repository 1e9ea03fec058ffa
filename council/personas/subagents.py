"""Claude Code subagents as cards, nyk's Council of High Intelligence cards included.

A subagent is Markdown with front matter (``name``, ``description``, ``model``, ``tools``,
``color``) and an optional ``council:`` block (``figure``, ``domain``, ``polarity``,
``polarity_pairs``, ``triads``, ``duo_keywords``, ``profiles``, ``provider_affinity``,
``reasoning_method``). Every field with a meaning here maps to it; anything else is kept under
``extensions.claude_code`` and named in a note, never refused. Where the body has recognisable
sections ("What You Tend to Miss", "Analytical Method"), they fill ``blind_spots``,
``framework`` and ``asks``. A model alias (``opus``, ``sonnet``, ``haiku``) becomes a tier, so
routing can give the seat any provider's model of that strength.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from council.base.errors import CardError
from council.personas.card import CardFields, slugify
from council.personas.card import split_front_matter as _split
from council.personas.front_matter import read_front_matter
from council.personas.importing import TOPIC_LINE, ImportedCard, as_list, summary, validated_fields
from council.personas.prompt import escape_jinja
from council.text.sourcefile import locate

TIERS = {"opus": "high", "sonnet": "mid", "haiku": "low"}
# Claude Code model aliases -> litellm model hints ("inherit": the session's model, no hint).
CLAUDE_MODELS: dict[str, str | None] = {
    "sonnet": "anthropic/claude-sonnet-4-5",
    "opus": "anthropic/claude-opus-4-5",
    "haiku": "anthropic/claude-haiku-4-5",
    "inherit": None,
}
_OURS = set(CardFields.model_fields) - {"name", "extensions"}
_SECTION = re.compile(r"^#{2,3}\s+(.+?)\s*$", re.MULTILINE)
_STEP = re.compile(r"^\s*(?:\d+\.|[-*])\s+\*\*(.+?)\*\*\s*[—:-]*\s*(.*)$", re.MULTILINE)
_GENERIC = re.compile(r"^\s*council member\b", re.IGNORECASE)


def _claude_model(value: Any) -> str | None:
    """A litellm model hint: Claude Code's aliases name Anthropic's models (and a tier)."""
    if not isinstance(value, str):
        return None
    if value in CLAUDE_MODELS:
        return CLAUDE_MODELS[value]
    if "/" in value:
        return value
    return f"anthropic/{value}" if value.startswith("claude-") else None


def sections(body: str) -> dict[str, str]:
    """``## Heading`` -> its text, headings lower-cased."""
    found: dict[str, str] = {}
    marks = list(_SECTION.finditer(body))
    if not marks:
        return found
    ends = [mark.start() for mark in marks[1:]] + [len(body)]
    for mark, end in zip(marks, ends, strict=True):
        found[mark.group(1).strip().lower()] = body[mark.end() : end].strip()
    return found


def _sentences(text: str, most: int) -> list[str]:
    flat = " ".join(text.replace("**", "").split())
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", flat) if len(p.strip()) > 3]
    return parts[:most]


def _from_sections(body: str) -> dict[str, list[str]]:
    """blind_spots, framework and asks where the body states them recognisably."""
    found = sections(body)
    values: dict[str, list[str]] = {}
    missed = next((t for h, t in found.items() if "tend to miss" in h or "blind spot" in h), "")
    if missed:
        values["blind_spots"] = _sentences(missed, 4)
    method = next((t for h, t in found.items() if "method" in h), "")
    steps = [
        f"{title.strip().rstrip('.')}: {rest.strip()}" for title, rest in _STEP.findall(method)
    ]
    if steps:
        values["framework"] = [step.rstrip(": ") for step in steps[:6]]
    questions = [s for s in _sentences(method, 40) if s.endswith("?")]
    if questions:
        values["asks"] = questions[:5]
    return values


def _description(data: dict[str, Any], council: dict[str, Any], display: str) -> str:
    """The subagent's own description, unless it is nyk's generic "Council member. Use
    standalone for ...": then who the member is, from figure, domain and polarity."""
    given = str(data.get("description") or "")
    if given.strip() and not _GENERIC.match(given):
        return summary(given)
    figure = council.get("figure") or display
    parts = [str(p).strip().rstrip(".") for p in (council.get("domain"), council.get("polarity"))]
    use = re.search(r"standalone for ([^,]+)", given)
    said = "; ".join(p for p in parts if p)
    return f"{figure}: {said}." if said else (f"{figure}, for {use.group(1)}." if use else figure)


def claude_code_card(text: str, path: Path) -> ImportedCard:
    front, body, _ = _split(text, path)
    data, node, lenient = read_front_matter(front, path)
    if not isinstance(data, dict):
        raise CardError(path, "front matter must be a mapping", line=2)

    def where(key: str) -> tuple[str, int | None]:
        loc = ["council", key] if key in council else [key]
        line = locate(node, loc)
        return ".".join(loc), None if line is None else line + 2

    council = data.get("council") or {}
    if not isinstance(council, dict):
        raise CardError(path, "must be a mapping", line=where("council")[1], field="council")
    display = data.get("name")
    if not isinstance(display, str) or not display.strip():
        raise CardError(path, "a subagent needs a name", line=2, field="name")
    foreign = sorted(str(k) for k in council if k not in _OURS)
    notes = lenient + [f"kept council.{key} under extensions.claude_code" for key in foreign]
    values: dict[str, Any] = _from_sections(body)
    values |= {k: v for k, v in council.items() if k in _OURS}
    domain = council.get("domain")
    if isinstance(domain, list):
        values["domain"] = ", ".join(str(d) for d in domain)
    figure = council.get("figure")
    values |= {
        "name": slugify(display),
        "description": council.get("description") or _description(data, council, display),
        "role": council.get("role")
        or str(values.get("domain") or "").capitalize()
        or figure
        or display.replace("-", " ").replace("_", " ").capitalize(),
        "tags": as_list(council.get("tags"))
        + [slugify(str(d)) for d in as_list(council.get("domain"))],
        "model": council.get("model") or _claude_model(data.get("model")),
        "tier": council.get("tier") or TIERS.get(str(data.get("model"))),
        "extensions": {"claude_code": data},
    }
    prompt = escape_jinja(body.strip())
    if values.get("reasoning_method"):
        prompt += "\n\nYour reasoning method: {{ reasoning_method }}."
    return ImportedCard(validated_fields(values, path, where), prompt + TOPIC_LINE, path, notes)
