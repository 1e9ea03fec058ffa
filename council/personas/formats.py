"""Persona cards from other tools, and to Character Card V2.

Imports: Claude Code subagents (Markdown, optional nested ``council:`` block), Character Card
V1/V2/V3 (JSON, or PNG with a ``chara``/``ccv3`` text chunk) and CrewAI ``agents.yaml``. Foreign
files are data: JSON via ``json``, YAML via ``yaml.safe_load`` only, and every Jinja opening in
foreign text is escaped, so it renders as written and can never run as a template. Names are
slugified ("Data Analyst" -> ``data-analyst``); the original display name is kept in ``figure``
or under ``extensions``. Every failure is a ``CardError`` naming the file (and field or line).
"""

from __future__ import annotations

import base64
import json
import keyword
import re
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from council.base.errors import CardError
from council.personas.card import CardFields, PersonaCard, parse_card, slugify
from council.personas.importing import (
    TOPIC_LINE,
    ImportedCard,
    summary,
    validated_fields,
)
from council.personas.markdown_import import front_matter_kind, markdown_persona_card
from council.personas.prompt import escape_jinja, system_prompt
from council.personas.subagents import CLAUDE_MODELS, claude_code_card
from council.text.sourcefile import load_yaml, locate, read_bytes, read_text, write_plain_file

__all__ = ["CLAUDE_MODELS", "FORMATS", "ImportedCard", "read_foreign", "write_imported"]

FORMATS = ("auto", "claude-code", "chara-card", "crewai", "council", "markdown")
# Character Card macros: {{char}}/<BOT> become the card's figure, {{user}}/<USER> the party it
# talks to, {{original}} (the front end's own prompt) nothing; any other macro stays as text.
USER_PHRASE = "the council"
CHAR_EXPRESSION = "{{ figure or name }}"
# Exported prompts stand in for the topic with this; importing our own export restores it.
EXPORT_TOPIC = "the question {{user}} brings to you"
V2_FIELDS: dict[str, Any] = {
    "name": "", "description": "", "personality": "", "scenario": "", "first_mes": "",
    "mes_example": "", "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
    "alternate_greetings": [], "character_book": None, "tags": [], "creator": "",
    "character_version": "", "extensions": {},
}  # fmt: skip
_MACRO = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<(bot|user)>", re.IGNORECASE)
_CREW_VAR = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def _macros(text: str, char: str, user: str, other: Callable[[str], str]) -> str:
    pieces, last = [], 0
    for match in _MACRO.finditer(text):
        pieces += [other(text[last : match.start()])]
        kind = (match.group(1) or match.group(2)).lower()
        pieces += [char if kind in ("char", "bot") else user if kind == "user" else ""]
        last = match.end()
    return "".join([*pieces, other(text[last:])])


def _template(text: str) -> str:
    """Foreign prose as a card body: {{char}}/{{user}} translated, every other tag inert."""
    return _macros(text, CHAR_EXPRESSION, USER_PHRASE, escape_jinja)


def _plain(text: str, display: str) -> str:
    """Foreign prose as a field value (fields are never rendered as templates)."""
    return _macros(text, display, USER_PHRASE, str)


# --- Character Card V1/V2/V3 -------------------------------------------------------------------


def _png_card(raw: bytes, path: Path) -> Any:
    """The JSON inside a card PNG (``ccv3`` preferred over ``chara``), base64 in a tEXt chunk."""
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CardError(path, "not a PNG file")
    chunks: dict[str, bytes] = {}
    offset = 8
    while offset + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[offset : offset + 8])
        if kind == b"tEXt":
            key, _, value = raw[offset + 8 : offset + 8 + length].partition(b"\0")
            chunks[key.decode("latin-1").lower()] = value
        offset += 12 + length
    encoded = chunks.get("ccv3") or chunks.get("chara")
    if encoded is None:
        raise CardError(path, "PNG has no Character Card ('chara' or 'ccv3' text chunk)")
    try:
        return json.loads(base64.b64decode(encoded))
    except ValueError as exc:
        raise CardError(path, f"PNG Character Card is not base64 JSON: {exc}") from None


def _chara_data(obj: Any, path: Path) -> tuple[str, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise CardError(path, "a Character Card must be a JSON object")
    spec = obj.get("spec")
    if spec in ("chara_card_v2", "chara_card_v3"):
        if not isinstance(obj.get("data"), dict):
            raise CardError(path, "must be an object", field="data")
        return str(spec), dict(obj["data"])
    if spec is None and "name" in obj and {"first_mes", "personality"} & set(obj):
        return "chara_card_v1", {k: obj[k] for k in V2_FIELDS if k in obj}
    raise CardError(path, f"expected chara_card_v2 or chara_card_v3, got {spec!r}", field="spec")


def _text(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(path, "must be a string", field=f"data.{key}")
    return value


def _chara_view(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a card gets from Character Card data; export compares against it to spot edits."""
    display = _text(data, "name", path).strip()
    if not display:
        raise CardError(path, "a Character Card needs a name", field="data.name")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise CardError(path, "must be a list of strings", field="data.tags")
    text = {k: _text(data, k, path).strip() for k in V2_FIELDS if isinstance(V2_FIELDS[k], str)}
    personality = _plain(text["personality"], display)
    items = [item.strip() for item in personality.split(",")]
    lines = [_template(text["system_prompt"])] if text["system_prompt"] else []
    lines.append(f"You are {CHAR_EXPRESSION}.")
    lines += [_template(text["description"])] if text["description"] else []
    lines += [f"Personality: {_template(text['personality'])}"] if personality else []
    lines += [f"Scenario: {_template(text['scenario'])}"] if text["scenario"] else []
    return {
        "figure": display,
        "description": summary(_plain(text["description"], display))
        or summary(_plain(text["creator_notes"], display))
        or f"{display}, imported from a Character Card.",
        # A short comma-separated personality is a trait list; prose stays in the body only.
        "traits": items if personality and all(0 < len(i.split()) <= 6 for i in items) else [],
        "tags": list(tags),
        "body": "\n\n".join(lines) + TOPIC_LINE,
    }


def _chara_card(obj: Any, path: Path) -> ImportedCard:
    spec, data = _chara_data(obj, path)
    view = _chara_view(data, path)
    extensions = data.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise CardError(path, "must be an object", field="data.extensions")
    found = extensions.get("council")
    ours: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
    body = view.pop("body")
    if ours.pop("body_in_system_prompt", False):  # our own export: the prompt is the body
        parts = _text(data, "system_prompt", path).split(EXPORT_TOPIC)
        body = "{{ topic }}".join(_template(part) for part in parts)
        body += "" if len(parts) > 1 else TOPIC_LINE
    original = {k: v for k, v in data.items() if k != "extensions"}
    kept = {k: v for k, v in extensions.items() if k != "council"}
    values: dict[str, Any] = {"name": slugify(view["figure"]), "role": "Imported character"}
    values |= view | ours
    carried = ours.get("extensions") or {}
    if not isinstance(carried, dict):
        raise CardError(path, "must be an object", field="data.extensions.council.extensions")
    values["extensions"] = {
        **carried,
        "chara_card": {"spec": spec, "data": original, "extensions": kept},
    }

    def where(key: str) -> tuple[str, int | None]:
        return (f"data.extensions.council.{key}" if key in ours else key), None

    return ImportedCard(validated_fields(values, path, where), body, path)


def export_chara_card_v2(card: PersonaCard, *, topic: str = EXPORT_TOPIC) -> dict[str, Any]:
    """Character Card V2 JSON. What a card imported from a Character Card kept is restored as
    it was, unless edited since; council-only fields travel in ``extensions.council``."""
    fields = card.fields
    stored = fields.extensions.get("chara_card")
    original: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    if isinstance(stored, dict) and isinstance(stored.get("data"), dict):
        original, kept = dict(stored["data"]), dict(stored.get("extensions") or {})
    view = _chara_view(original, card.where) if original.get("name") else {}
    data = {**V2_FIELDS, **{k: v for k, v in original.items() if k in V2_FIELDS}}
    extra = {k: v for k, v in original.items() if k not in V2_FIELDS}
    current = {**fields.model_dump(), "body": card.body.rstrip()}
    unchanged = {k: k in view and str(view[k]).rstrip() == str(current[k]) for k in current}
    if not unchanged.get("figure"):
        data["name"] = fields.figure or fields.name
    if not unchanged.get("description"):
        data["description"] = fields.description
    if not unchanged.get("traits"):
        data["personality"] = ", ".join(fields.traits)
    data["tags"] = list(fields.tags)
    ours = fields.model_dump(mode="json")
    ours["extensions"] = {k: v for k, v in fields.extensions.items() if k != "chara_card"}
    if not unchanged["body"]:
        data["system_prompt"] = system_prompt(card, topic)
        ours["body_in_system_prompt"] = True
    data["extensions"] = {**kept, "council": ours, **({"chara_card_v3": extra} if extra else {})}
    if data["character_book"] is None:  # optional in V2: absent rather than null
        del data["character_book"]
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


# --- CrewAI agents.yaml ------------------------------------------------------------------------


def _crew_template(text: str, variables: dict[str, str]) -> str:
    """``{var}`` -> ``{{ var }}`` (renamed where it would clash), the rest inert."""
    pieces, last = [], 0
    for match in _CREW_VAR.finditer(text):
        var = match.group(1)
        clash = keyword.iskeyword(var) or var in CardFields.model_fields or var in ("true", "none")
        name = f"{var}_input" if clash else var
        if name != "topic":
            variables.setdefault(name, f"<{var}>")
        pieces += [escape_jinja(text[last : match.start()]), f"{{{{ {name} }}}}"]
        last = match.end()
    return "".join([*pieces, escape_jinja(text[last:])])


def _crewai(text: str, path: Path) -> list[ImportedCard]:
    data, node = load_yaml(text, path, CardError)
    if not isinstance(data, dict) or not data:
        raise CardError(path, "expected a mapping of agent names to {role, goal, backstory}")
    cards = []
    for key, agent in data.items():
        line = locate(node, [str(key)])
        at = None if line is None else line + 1

        def where(field: str, key: Any = key, at: int | None = at) -> tuple[str, int | None]:
            return f"{key}.{field}", at

        if not isinstance(agent, dict):
            raise CardError(path, "an agent must be a mapping", line=at, field=str(key))
        parts = {k: agent.get(k) or "" for k in ("role", "goal", "backstory")}
        for part, value in parts.items():
            if not isinstance(value, str):
                raise CardError(path, "must be a string", line=at, field=f"{key}.{part}")
        if not parts["role"].strip():
            raise CardError(path, "an agent needs a role", line=at, field=f"{key}.role")
        variables: dict[str, str] = {}
        role, goal, story = (_crew_template(" ".join(parts[k].split()), variables) for k in parts)
        body = f"You are {role.rstrip('.')}. {story}".rstrip()
        body += f"\n\nYour personal goal is: {goal}" if goal else ""
        llm = agent.get("llm")
        values = {
            "name": slugify(str(key)),
            "description": summary(parts["goal"]) or " ".join(parts["role"].split()),
            "role": " ".join(parts["role"].split()),
            "model": llm if isinstance(llm, str) and "/" in llm else None,
            "variables": variables,
            "extensions": {"crewai": {"agent": key, **agent}},
        }
        cards.append(ImportedCard(validated_fields(values, path, where), body + TOPIC_LINE, path))
    return cards


# --- Detection and writing ---------------------------------------------------------------------


def detect_format(path: Path, text: str) -> str:
    """The format of a foreign file, from its extension and, where that is unclear, its content."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "crewai"
    if suffix in (".json", ".png") or text.lstrip().startswith("{"):
        return "chara-card"
    if suffix in (".md", ".markdown") and not text.startswith("---"):
        return "markdown"  # a persona written up as prose: a title and labelled fields
    if suffix in (".md", ".markdown") or text.startswith("---"):
        return front_matter_kind(text, path)  # a card, a subagent, or a write-up
    raise CardError(path, "unknown format: expected .md, .json, .png or .yaml")


def read_foreign(path: Path | str, fmt: str = "auto") -> list[ImportedCard]:
    """The cards in one foreign file."""
    try:
        return _read(Path(path), fmt)
    except RecursionError:
        raise CardError(path, "nested too deeply to read") from None


def _read(path: Path, fmt: str) -> list[ImportedCard]:
    if path.suffix.lower() == ".png":
        # An image may be larger than a card file, but not without bound.
        return [_chara_card(_png_card(read_bytes(path, CardError, 16 * 1024 * 1024), path), path)]
    text, path = read_text(path, CardError)
    kind = detect_format(path, text) if fmt == "auto" else fmt
    if kind == "chara-card":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        except ValueError as exc:  # a number of thousands of digits
            raise CardError(path, f"invalid JSON: {exc}") from None
        return [_chara_card(obj, path)]
    if kind == "claude-code":
        return [claude_code_card(text, path)]
    if kind == "crewai":
        return _crewai(text, path)
    if kind == "council":
        card = parse_card(text, path)
        return [ImportedCard(card.fields, card.body, path)]
    if kind == "markdown":
        return [markdown_persona_card(text, path)]
    raise CardError(path, f"unknown format '{fmt}'; known: {', '.join(FORMATS)}")


def foreign_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given; folders searched recursively for files of a known extension."""
    known = {".md", ".markdown", ".json", ".png", ".yaml", ".yml"}
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += sorted(p for p in entry.rglob("*") if p.suffix.lower() in known)
        else:
            found.append(entry)  # a missing file is reported when it is read
    return list(dict.fromkeys(found))


def _pair_finder(names: set[str]) -> Any:
    def find(short: str) -> str | None:
        wanted = slugify(short)
        if wanted in names:
            return wanted
        suffixed = sorted(n for n in names if n.endswith(f"-{wanted}"))
        return suffixed[0] if len(suffixed) == 1 else None

    return find


def resolve_pairs(cards: list[ImportedCard], *, keep_unknown: bool = False) -> list[ImportedCard]:
    """Polarity pairs resolved among the cards imported together (nyk's ``machiavelli`` is the
    imported ``council-machiavelli``). A name not among them is set aside with a note, so an
    import never binds silently to a shipped card of the same short name; ``keep_unknown``
    keeps such names as they are (to pair with the library on purpose)."""
    find = _pair_finder({card.fields.name for card in cards})
    resolved = []
    for card in cards:
        pairs: list[str] = []
        unknown: list[str] = []
        for name in card.fields.polarity_pairs:
            match = find(name)
            if match:
                pairs.append(match)
            else:
                unknown.append(name)
        notes = list(card.notes)
        extensions = dict(card.fields.extensions)
        if unknown and keep_unknown:
            pairs += unknown
        elif unknown:
            extensions["unresolved_pairs"] = unknown
            notes.append(
                f"pair {', '.join(unknown)} is not among the imported cards: set aside "
                "under extensions.unresolved_pairs"
            )
        fields = card.fields.model_copy(update={"polarity_pairs": pairs, "extensions": extensions})
        resolved.append(ImportedCard(fields, card.body, card.source, notes))
    return resolved


def write_imported(cards: list[ImportedCard], to_dir: Path, *, force: bool = False) -> list[Path]:
    """Write cards as ``DIR/NAME.md``; every card is checked before anything is written."""
    targets: dict[Path, ImportedCard] = {}
    for card in cards:
        target = to_dir / f"{card.fields.name}.md"
        if target in targets:
            other = targets[target].source
            message = f"another imported card ({other}) is also named '{card.fields.name}'"
            raise CardError(card.source, message, field="name")
        if target.is_symlink():  # even a dangling one: it would write outside the folder
            raise CardError(target, "is a symbolic link; council writes only plain files here")
        if target.exists() and not force:
            raise CardError(target, "already exists; use --force to overwrite")
        system_prompt(parse_card(card.text(), target), "a test topic")  # must load and render
        targets[target] = card
    if not targets:
        return []
    try:
        to_dir.mkdir(parents=True, exist_ok=True)
        for target, card in targets.items():
            write_plain_file(target, card.text())
    except OSError as exc:
        raise CardError(to_dir, f"cannot write: {exc.strerror or exc}") from None
    return list(targets)
