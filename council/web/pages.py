"""The web app's pages: server-rendered HTML, every value escaped, no asset from elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from council.personas.card import PersonaCard
from council.personas.panels import Panel
from council.records.options import options as spec_options
from council.records.spec import CHAIR_NAME, WEB
from council.web.form import option_inputs

NAV = (
    ("/", "Convene"),
    ("/runs", "Runs"),
    ("/experiments", "Experiments"),
    ("/personas", "Personas"),
    ("/protocols", "Protocols"),
)


def layout(title: str, body: str, *, script: bool = True) -> str:
    links = "".join(f"<a href='{href}'>{label}</a>" for href, label in NAV)
    # Landmarks for a screen reader: the navigation is named, the page's content is <main>.
    js = "<script src='/static/app.js'></script>" if script else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} · council</title>"
        "<link rel='stylesheet' href='/static/app.css'></head>"
        f"<body><nav aria-label='council'><b>council</b>{links}</nav>"
        f"<main><h1>{escape(title)}</h1>{body}</main>"
        f"{js}</body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells the caller built from escaped parts)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def options(values: Iterable[str], selected: str | None = None) -> str:
    return "".join(
        f"<option value='{escape(v)}'{' selected' if v == selected else ''}>{escape(v)}</option>"
        for v in values
    )


def is_chair(card: PersonaCard) -> bool:
    """A chair's card: it chairs the council and is never ticked as a member."""
    return card.name == CHAIR_NAME or "chair" in card.fields.tags


def persona_groups(
    cards: Mapping[str, PersonaCard], panels: Mapping[str, Panel]
) -> list[tuple[str, str, list[str]]]:
    """(heading, what it is for, card names): each panel's members, each card under the
    first panel that seats it, then the cards no panel seats by their folder; no chair."""
    members = {name: card for name, card in cards.items() if not is_chair(card)}
    shown: set[str] = set()
    groups = []
    for panel in panels.values():
        names = [m for m in panel.members if m in members and m not in shown]
        again = [m for m in panel.members if m in shown]
        about = panel.about + (f" With {', '.join(again)}, listed above." if again else "")
        if names:
            groups.append((f"Panel: {panel.name}", about.strip(), names))
            shown.update(names)
    folders: dict[str, list[str]] = {}
    for name, card in members.items():
        if name not in shown:
            folder = card.path.parent.name if card.path is not None else ""
            folders.setdefault(folder, []).append(name)
    for folder, names in sorted(folders.items()):
        heading = "More personas" if folder in ("", "personas") else f"More personas: {folder}"
        groups.append((heading, "", names))
    return groups


def _persona_box(card: PersonaCard) -> str:
    domain = card.fields.domain or card.fields.role
    return (
        f"<label class='persona'><input type='checkbox' name='personas' "
        f"value='{escape(card.name)}'><span><b>{escape(card.name)}</b> "
        f"<span class='domain'>{escape(domain)}</span>"
        f"<span class='about'>{escape(card.fields.description)}</span></span></label>"
    )


def _persona_fieldset(cards: Mapping[str, PersonaCard], panels: Mapping[str, Panel]) -> str:
    groups = "".join(
        f"<fieldset class='group'><legend>{escape(heading)}</legend>"
        + (f"<p class='explain'>{escape(about)}</p>" if about else "")
        + "<div class='personas'>"
        + "".join(_persona_box(cards[name]) for name in names)
        + "</div></fieldset>"
        for heading, about, names in persona_groups(cards, panels)
    )
    return (
        "<fieldset class='members'><legend>Personas (none ticked: the default panel; the chair "
        f"writes the verdict and is not listed)</legend>{groups}</fieldset>"
    )


def _protocol_choice(protocols: Mapping[str, str]) -> str:
    chosen = "council" if "council" in protocols else next(iter(protocols), "")
    choices = "".join(
        f"<option value='{escape(name)}' data-about='{escape(about)}'"
        f"{' selected' if name == chosen else ''}>{escape(name)}</option>"
        for name, about in protocols.items()
    )
    listing = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(about)}</dd>" for name, about in protocols.items()
    )
    return (
        f"<label>Protocol<select name='protocol' aria-describedby='protocol-about'>{choices}"
        f"</select></label><p id='protocol-about' class='explain' aria-live='polite'>"
        f"{escape(protocols.get(chosen, ''))}</p>"
        "<details class='protocols'><summary>What each protocol does</summary>"
        f"<dl>{listing}</dl></details>"
    )


def convene_page(
    cards: Mapping[str, PersonaCard],
    panels: Mapping[str, Panel],
    protocols: Mapping[str, str],
    models: Sequence[str],
    default_model: str,
    ceilings: Mapping[str, float],
) -> str:
    """``protocols``: name -> what it does; ``ceilings``: the server's cap on an option, by
    key. The library choices are written here; the options are generated from the spec."""
    panel_choices = "".join(
        f"<option value='{escape(name)}'>{escape(name)}: {escape(', '.join(p.members))}</option>"
        for name, p in panels.items()
    )
    body = f"""
<form id='convene' class='stack'>
  <label>Question<textarea name='question' required rows='3' maxlength='100000'></textarea></label>
  <div class='row'>
    <label>Panel<select name='panel'><option value=''>the personas ticked below</option>
      <option value='auto'>auto: the panel that fits the question</option>
      {panel_choices}</select></label>
    <label>Model<select name='model'>{options(models, default_model)}</select></label>
  </div>
  <div class='protocol'>{_protocol_choice(protocols)}</div>
  {_persona_fieldset(cards, panels)}
  {option_inputs(spec_options(WEB), ceilings)}
  <div><button type='submit'>Convene</button>
    <span id='convene-error' class='error' role='status'></span></div>
</form>"""
    return layout("Convene a council", body)


def runs_page(rows: Sequence[Mapping[str, Any]], filters: Mapping[str, str]) -> str:
    def field(name: str, label: str, kind: str = "text") -> str:
        value = escape(filters.get(name, ""))
        return f"<label>{label}<input name='{name}' type='{kind}' value='{value}'></label>"

    form = (
        "<form class='row' method='get'>"
        + field("question", "Question has")
        + field("persona", "Persona")
        + field("model", "Model like")
        + field("protocol", "Protocol")
        + field("status", "Status")
        + field("since", "Since", "date")
        + field("until", "Until", "date")
        + "<button>Filter</button></form>"
    )
    body_rows = [
        [
            f"<a href='/runs/{escape(r['run_id'])}'>{escape(r['run_id'])}</a>",
            escape(r["status"]),
            escape(r["protocol"]),
            escape(r["question"][:160]),
            escape(str(r["calls"])),
        ]
        for r in rows
    ]
    listing = table(["run", "status", "protocol", "question", "calls"], body_rows, raw=True)
    return layout("Runs", form + (listing if rows else "<p>No runs match.</p>"))
