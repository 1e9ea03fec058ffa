"""Pages for the library: persona cards (rendered for a question), protocols (as their stage
graph), and experiment folders."""

from __future__ import annotations

from html import escape
from pathlib import Path

import networkx as nx

from council.personas.card import PersonaCard
from council.personas.prompt import system_prompt
from council.protocols.graph import Protocol
from council.web.pages import layout, table


def personas_page(cards: dict[str, PersonaCard]) -> str:
    rows = [
        [
            f"<a href='/personas/{escape(name)}'>{escape(name)}</a>",
            escape(card.fields.role),
            escape(card.fields.description),
        ]
        for name, card in cards.items()
    ]
    return layout("Personas", table(["card", "role", "description"], rows, raw=True))


def persona_page(card: PersonaCard, question: str) -> str:
    f = card.fields
    facts = [
        ["role", f.role],
        ["figure", f.figure or "-"],
        ["traits", ", ".join(f.traits)],
        ["frameworks", "; ".join(f.framework)],
        ["asks", " · ".join(f.asks)],
        ["blind spots", "; ".join(f.blind_spots)],
        ["polarity pairs", ", ".join(f.polarity_pairs) or "-"],
    ]
    prompt = system_prompt(card, question)
    form = (
        "<form method='get' class='row'><label>Render for the question<input name='question' "
        f"value='{escape(question)}' size='60'></label><button>Render</button></form>"
    )
    body = (
        f"<p>{escape(f.description)}</p>{table(['field', 'value'], facts)}{form}"
        f"<h2>System prompt</h2><pre>{escape(prompt)}</pre>"
    )
    return layout(f"Persona: {card.name}", body, script=False)


def protocols_page(protocols: dict[str, Protocol]) -> str:
    rows = [
        [
            f"<a href='/protocols/{escape(name)}'>{escape(name)}</a>",
            escape(" → ".join(stage.id for stage in p.order())),
        ]
        for name, p in protocols.items()
    ]
    return layout("Protocols", table(["protocol", "stages"], rows, raw=True))


def graph_svg(protocol: Protocol) -> str:
    """The top-level stage graph, one column per generation, edges as arrows."""
    columns = list(nx.topological_generations(protocol.graph))
    box_w, box_h, gap_x, gap_y = 150, 40, 60, 20
    place: dict[str, tuple[int, int]] = {}
    for x, generation in enumerate(columns):
        for y, stage_id in enumerate(sorted(generation, key=list(protocol.stages).index)):
            place[stage_id] = (20 + x * (box_w + gap_x), 20 + y * (box_h + gap_y))
    width = 40 + len(columns) * (box_w + gap_x)
    height = 40 + max(len(g) for g in columns) * (box_h + gap_y)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='graph' width='{width}' "
        f"height='{height}' role='img' aria-label='stage graph'>"
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' "
        "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z'/></marker></defs>"
    ]
    for source, target in protocol.graph.edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        parts.append(
            f"<line x1='{x1 + box_w}' y1='{y1 + box_h // 2}' x2='{x2}' "
            f"y2='{y2 + box_h // 2}' stroke='#555' marker-end='url(#arrow)'/>"
        )
    for stage_id, (x, y) in place.items():
        kind = protocol.stages[stage_id].kind
        parts.append(
            f"<g class='stage'><rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' "
            f"rx='6'/><text x='{x + 8}' y='{y + 17}'>{escape(stage_id)}</text>"
            f"<text x='{x + 8}' y='{y + 33}' class='kind'>{escape(kind)}</text></g>"
        )
    return "".join(parts) + "</svg>"


def protocol_page(protocol: Protocol) -> str:
    def after(stage_id: str) -> str:
        graph = protocol.graph if stage_id in protocol.graph else None
        return ", ".join(sorted(graph.predecessors(stage_id))) if graph is not None else ""

    rows = [[stage.id, stage.kind, after(stage.id)] for stage in protocol.stages.values()]
    body = (
        f"<p>{escape(protocol.spec.description)}</p>{graph_svg(protocol)}"
        f"{table(['stage', 'kind', 'after'], rows)}<h2>File</h2><pre>{escape(protocol.text)}</pre>"
    )
    return layout(f"Protocol: {protocol.name}", body, script=False)


def experiments_page(folders: list[Path]) -> str:
    if not folders:
        return layout(
            "Experiments",
            "<p>No experiment folders (start the server with "
            "--experiments DIR to browse them).</p>",
            script=False,
        )
    rows = [[f"<a href='/experiments/{escape(p.name)}'>{escape(p.name)}</a>"] for p in folders]
    return layout("Experiments", table(["experiment"], rows, raw=True), script=False)
