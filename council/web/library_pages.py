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
            escape(p.spec.description),
            escape(" → ".join(stage.label for stage in p.order())),
        ]
        for name, p in protocols.items()
    ]
    return layout("Protocols", table(["protocol", "what it does", "stages"], rows, raw=True))


BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 40, 60, 20, 20


def _places(protocol: Protocol) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Each stage's box (one column per generation, in file order), and the drawing's size."""
    columns = list(nx.topological_generations(protocol.graph))
    place: dict[str, tuple[int, int]] = {}
    for x, generation in enumerate(columns):
        for y, stage_id in enumerate(sorted(generation, key=list(protocol.stages).index)):
            place[stage_id] = (MARGIN + x * (BOX_W + GAP_X), MARGIN + y * (BOX_H + GAP_Y))
    width = 2 * MARGIN + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = 2 * MARGIN + max(len(g) for g in columns) * (BOX_H + GAP_Y) - GAP_Y
    return place, width, height


def _edge(source: tuple[int, int], target: tuple[int, int], bottom: int) -> tuple[str, int]:
    """An arrow's path, and how far below the boxes it reaches. Next columns are joined side
    to side; an edge that skips columns arcs under the boxes it passes (drawn straight, it
    would run behind them and look like one chain), lower the more columns it skips."""
    (x1, y1), (x2, y2) = source, target
    skipped = round((x2 - x1) / (BOX_W + GAP_X)) - 1
    if skipped <= 0:
        a, b = (x1 + BOX_W, y1 + BOX_H // 2), (x2, y2 + BOX_H // 2)
        middle = (a[0] + b[0]) // 2
        return f"M{a[0]},{a[1]} C{middle},{a[1]} {middle},{b[1]} {b[0]},{b[1]}", 0
    depth = bottom + 12 * skipped
    a, b = (x1 + BOX_W // 2 + 10, y1 + BOX_H), (x2 + BOX_W // 2 - 10, y2 + BOX_H)
    return f"M{a[0]},{a[1]} C{a[0]},{depth} {b[0]},{depth} {b[0]},{b[1]}", depth


def graph_svg(protocol: Protocol) -> str:
    """The top-level stage graph: one column per generation, every edge an arrow (a stage that
    reads several earlier stages has an arrow from each). It scales to its container (a
    viewBox, width 100%), so a long protocol fits a narrow window."""
    place, width, height = _places(protocol)
    bottom = height - MARGIN
    edges, deepest = [], height
    for source, target in protocol.graph.edges:
        path, depth = _edge(place[source], place[target], bottom)
        deepest = max(deepest, depth + MARGIN // 2)
        edges.append(
            f"<path class='edge' data-from='{escape(source)}' data-to='{escape(target)}' "
            f"d='{path}' fill='none' stroke='#555' marker-end='url(#arrow)'/>"
        )
    boxes = []
    for stage_id, (x, y) in place.items():
        stage = protocol.stages[stage_id]
        boxes.append(
            f"<g class='stage' data-stage='{escape(stage_id)}'><title>{escape(stage_id)}"
            f"</title><rect x='{x}' y='{y}' width='{BOX_W}' height='{BOX_H}' rx='6'/>"
            f"<text x='{x + 8}' y='{y + 17}'>{escape(stage.label[:22])}</text>"
            f"<text x='{x + 8}' y='{y + 33}' class='kind'>{escape(stage.kind)}</text></g>"
        )
    label = f"stage graph of {protocol.name}: {len(place)} stages, {len(edges)} arrows"
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='graph' viewBox='0 0 {width} {deepest}' "
        f"width='100%' preserveAspectRatio='xMinYMin meet' role='img' "
        f"aria-label='{escape(label)}'>"
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' "
        "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z'/></marker></defs>"
        + "".join(edges)
        + "".join(boxes)
        + "</svg>"
    )


def protocol_page(protocol: Protocol) -> str:
    def after(stage_id: str) -> str:
        graph = protocol.graph if stage_id in protocol.graph else None
        return ", ".join(sorted(graph.predecessors(stage_id))) if graph is not None else ""

    rows = [
        [stage.label, stage.id, stage.kind, after(stage.id)] for stage in protocol.stages.values()
    ]
    body = (
        f"<p>{escape(protocol.spec.description)}</p><div class='graph'>{graph_svg(protocol)}</div>"
        f"{table(['stage', 'id', 'kind', 'after'], rows)}"
        f"<h2>File</h2><pre>{escape(protocol.text)}</pre>"
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
