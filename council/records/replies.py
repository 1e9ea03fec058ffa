"""A ballot given as JSON, read back out of a reply, and the same ballot as prose.

A vote held to a JSON schema (``council.engine.structured``) comes back as one JSON object:
``{"stance": ..., "confidence": ..., "dealbreaker": ..., "reason": ...}``. The engine reads the
ballot from its fields (``ballot_object``); everyone else reads the reply as prose
(``ballot_prose``, ``Turn.text``): later seats and the chair (a JSON object in a
cross-examination would be an argument nobody wrote), the transcript, the gates and guards that
compare replies, and the meter that embeds them. Both live here, in the bottom layer, so that
the engine and the meter read a reply the same way.

A reply cut off at its token cap ends inside the object, usually inside its reason, the
longest and last field; the fields written in full before the cut are read
(``_leading_fields``), so a seat that wrote its stance and then ran out of tokens still votes.
Only a reply known to be cut off is read that way (``cut``): a broken object followed by a
ballot line is read by its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# A raw newline inside a string, as small models write one, is read rather than refused.
_DECODER = json.JSONDecoder(strict=False)
_SEPARATOR = re.compile(r"[\s,]*")
_COLON = re.compile(r"\s*:\s*")
BALLOT_FIELDS = ("stance", "confidence", "dealbreaker")


def json_values(text: str, openers: str = "{") -> Iterator[tuple[int, Any]]:
    """(where it starts, the value) of every whole JSON value in ``text`` opening with one of
    ``openers``, wherever prose puts it, in order (one nested in another is found too)."""
    for match in re.finditer(f"[{re.escape(openers)}]", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        yield match.start(), value


def ballot_object(text: str, *, cut: bool = False) -> tuple[int, dict[str, Any]] | None:
    """(where it starts, its fields) of the last whole JSON object in a reply that carries a
    stance (a ballot, perhaps followed by a re-asked one); with ``cut``, failing that, of an
    object the token cap cut short after its stance. None: the reply is read as text."""
    found: tuple[int, dict[str, Any]] | None = None
    for start, value in json_values(text):
        if isinstance(value, dict) and "stance" in value:
            found = (start, value)
    if found is not None or not cut:
        return found
    for start in (m.start() for m in re.finditer(r"\{", text)):
        fields = _leading_fields(text, start)
        if "stance" in fields:
            return start, fields
    return None


def _leading_fields(text: str, start: int) -> dict[str, Any]:
    """The fields of the object opening at ``start`` written in full before the text ends,
    and the string it was writing when it ended, as far as it got."""
    fields: dict[str, Any] = {}
    at = start + 1
    while True:
        at = _SEPARATOR.match(text, at).end()  # type: ignore[union-attr]  # matches ""
        try:
            key, at = _DECODER.raw_decode(text, at)
        except ValueError:
            return fields
        colon = _COLON.match(text, at)
        if not isinstance(key, str) or colon is None:
            return fields
        try:
            fields[key], at = _DECODER.raw_decode(text, colon.end())
        except ValueError:
            cut = _cut_string(text[colon.end() :])
            if cut is not None:
                fields[key] = cut
            return fields


def _cut_string(rest: str) -> str | None:
    """A JSON string the text ends inside, as far as it got; None if ``rest`` is not one."""
    if not rest.startswith('"'):
        return None
    body = rest.rstrip("\\")  # a cut that fell inside an escape
    try:
        return str(json.loads(body + '"', strict=False))
    except ValueError:
        return body[1:]


def ballot_prose(text: str, *, cut: bool = False) -> str:
    """A reply whose ballot is a JSON object, as prose: whatever preceded the object, its
    reason, then its ballot as the labelled line (``STANCE: .. | CONFIDENCE: .. | DEALBREAKER:
    ..``); ``cut``: an object cut short is read as far as it got (``ballot_object``). A reply
    with no such object is returned as it is."""
    found = ballot_object(text, cut=cut)
    if found is None:
        return text
    start, fields = found
    written = {name: field_text(fields.get(name)) for name in BALLOT_FIELDS}
    line = " | ".join(f"{name.upper()}: {value}" for name, value in written.items() if value)
    # Before it: a re-asked ballot's first reply (itself perhaps an object), or prose.
    parts = [ballot_prose(text[:start]).strip(), str(fields.get("reason") or "").strip(), line]
    return "\n\n".join(part for part in parts if part)


def field_text(value: Any) -> str | None:
    """A JSON field as a ballot line writes it: a ranking joined by '>', true as yes."""
    if value is None:
        return None
    if isinstance(value, list):  # a ranking, best first
        return " > ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
