"""A persona's write-up and its addendum as the two arms of a variants experiment.

Researchers publish a persona twice: a write-up (who the persona is, what it asks, what it
misses) and an addendum, a framework-grounded rendition of the same persona. Imported together,
the two become the cards ``council experiment variants --pairs KEY`` compares: ``KEY-topic`` is
the write-up, ``KEY-framework`` the write-up with the addendum appended (so the arms differ
only by what the addendum adds), tagged and marked ``extensions.variant`` as the shipped
variant cards are.

How they are recognised (``markdown_import``): an addendum says so in its front matter
(``addendum: true``, or ``type``/``kind``/``variant``/``rendition`` naming an addendum or a
framework rendition), in its title or in its file name. ``KEY`` is front matter ``persona:``
where given, else the file name without the marker: ``nurse.md`` and ``nurse-addendum.md``
pair as ``nurse``. A key with several write-ups or several addenda pairs nothing (each is
imported on its own, with a note), so a pairing is never a guess.
"""

from __future__ import annotations

from typing import Any

from council.personas.card import CardFields
from council.personas.importing import TOPIC_LINE, ImportedCard

# What the addendum's own labelled fields replace on the framework-grounded card.
ADDENDUM_FIELDS = ("description", "framework", "asks", "blind_spots", "reasoning_method", "domain")


def _markdown(card: ImportedCard) -> dict[str, Any] | None:
    found = card.fields.extensions.get("markdown")
    return found if isinstance(found, dict) and "persona" in found else None


def _variant(card: ImportedCard, key: str, style: str, **changes: Any) -> CardFields:
    values = card.fields.model_dump()
    extensions = {**values["extensions"], **changes.pop("extensions", {})}
    extensions["variant"] = {"of": key, "style": style}
    values |= changes | {
        "name": f"{key}-{style}",
        "tags": [*values["tags"], f"variant-{style}"],
        "extensions": extensions,
    }
    return CardFields.model_validate(values)


def _pair(key: str, write_up: ImportedCard, addendum: ImportedCard) -> list[ImportedCard]:
    labels = set((_markdown(addendum) or {}).get("labels", []))
    taken = {f: getattr(addendum.fields, f) for f in ADDENDUM_FIELDS if f in labels}
    added = addendum.fields.extensions
    kept = {k: added[k] for k in ("markdown", "provenance") if k in added}
    # The addendum's text without its "You are ..." line: the persona is already introduced.
    text = addendum.body.removesuffix(TOPIC_LINE).partition("\n\n")[2]
    body = f"{write_up.body.removesuffix(TOPIC_LINE).rstrip()}\n\n{text.strip()}{TOPIC_LINE}"
    command = f"`council experiment variants --pairs {key}`"
    topic = ImportedCard(
        _variant(write_up, key, "topic"),
        write_up.body,
        write_up.source,
        [
            *write_up.notes,
            f"paired with the addendum {addendum.source.name}: named "
            f"{key}-topic, the arm {command} compares with {key}-framework",
        ],
    )
    framework = ImportedCard(
        _variant(write_up, key, "framework", extensions={"addendum": kept}, **taken),
        body,
        addendum.source,
        [
            *addendum.notes,
            f"addendum to {write_up.source.name}: the write-up with this "
            f"addendum appended, named {key}-framework for {command}",
        ],
    )
    return [topic, framework]


def pair_write_ups(cards: list[ImportedCard]) -> list[ImportedCard]:
    """Each write-up imported with exactly one addendum of the same key becomes a
    topic/framework pair; every other card is returned as it was (an addendum left alone
    says why)."""
    groups: dict[str, list[int]] = {}
    for index, card in enumerate(cards):
        markdown = _markdown(card)
        if markdown is not None:
            groups.setdefault(str(markdown["persona"]), []).append(index)
    result = list(cards)
    for key, members in groups.items():
        addenda = [i for i in members if (_markdown(cards[i]) or {}).get("addendum")]
        write_ups = [i for i in members if i not in addenda]
        if len(write_ups) == 1 and len(addenda) == 1:
            result[write_ups[0]], result[addenda[0]] = _pair(
                key, cards[write_ups[0]], cards[addenda[0]]
            )
            continue
        for index in addenda:
            card = cards[index]
            why = (
                f"an addendum to '{key}', but {len(write_ups)} write-ups and {len(addenda)} "
                "addenda of that name were imported: imported on its own, unpaired"
            )
            result[index] = ImportedCard(card.fields, card.body, card.source, [*card.notes, why])
    return result
