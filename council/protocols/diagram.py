"""A protocol as text: a stage listing and a Mermaid flowchart."""

from __future__ import annotations

from council.protocols.graph import Protocol
from council.protocols.spec import AnyStage, LoopStage, SpeakingStage


def _node(stage: AnyStage) -> str:
    return f'    {stage.id}["{stage.label} ({stage.kind})"]'


def mermaid(protocol: Protocol) -> str:
    """A ``flowchart TD``: loops are subgraphs; a stage that reads its previous round has a
    dotted edge to itself."""
    lines = ["flowchart TD"]
    for stage in protocol.order():
        if isinstance(stage, LoopStage):
            until = f", until {stage.until.model_dump(exclude_none=True)}" if stage.until else ""
            lines.append(
                f'    subgraph {stage.id}["{stage.label}: up to {stage.rounds} rounds{until}"]'
            )
            lines += ["    " + _node(body) for body in protocol.body_order(stage.id)]
            lines += [f"        {a} --> {b}" for a, b in protocol.bodies[stage.id].edges]
            lines += [
                f"        {body.id} -.->|next round| {body.id}"
                for body in protocol.body_order(stage.id)
                if body.id in body.sees
            ]
            lines.append("    end")
        else:
            lines.append(_node(stage))
    lines += [f"    {a} --> {b}" for a, b in protocol.graph.edges]
    return "\n".join(lines)


def describe_stage(stage: SpeakingStage) -> str:
    parts = [f"{stage.id} ({stage.kind}): {stage.label}", f"seats: {stage.seats}"]
    if stage.sees:
        parts.append("sees: " + ", ".join(stage.sees) + (" anonymized" if stage.anonymize else ""))
    if stage.sequential_up_to is not None:
        parts.append(f"one seat after another up to {stage.sequential_up_to} seats")
    if stage.words is not None:
        parts.append(f"{stage.words} words")
    return "; ".join([*parts, *stage.details()])


def describe(protocol: Protocol) -> str:
    spec = protocol.spec
    lines = [f"{spec.name}: {spec.description}"]
    if spec.origin:
        lines.append(f"origin: {spec.origin}")
    bounds = spec.panel
    panel = (
        f"exactly {bounds.min}"
        if bounds.max == bounds.min
        else f"{bounds.min}" + (f" to {bounds.max}" if bounds.max else " or more")
    )
    lines += [f"panel: {panel} personas", f"file: {protocol.path}", "", "stages:"]
    for stage in protocol.order():
        if isinstance(stage, LoopStage):
            lines.append(f"  {stage.id} (loop): up to {stage.rounds} rounds")
            lines += ["    " + describe_stage(body) for body in protocol.body_order(stage.id)]
        else:
            lines.append("  " + describe_stage(stage))
    if spec.switches:
        lines += ["", "switches (--switch NAME=off):"]
        for name, switch in spec.switches.items():
            state = "on" if switch.default else "off"
            locked = f" [locked: {switch.locked}]" if switch.locked else ""
            lines.append(f"  {name} ({state}): {switch.says}{locked}")
    return "\n".join(lines)
