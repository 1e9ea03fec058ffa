"""Compiling a protocol file into a networkx graph of stages, and validating it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import yaml

from council.errors import ProtocolError
from council.protocols.spec import ProtocolSpec, Stage, SynthesisStage
from council.sourcefile import load_yaml, locate, read_text, validate


@dataclass(frozen=True)
class Protocol:
    """A validated protocol: its spec, its stage graph (edges point downstream), its source."""

    spec: ProtocolSpec
    graph: nx.DiGraph
    path: Path
    content_hash: str

    @property
    def name(self) -> str:
        return self.spec.name

    def prompt_line(self, stage_id: str) -> int:
        line: int | None = self.graph.nodes[stage_id]["prompt_line"]
        return line or 1

    def stage(self, stage_id: str) -> Stage:
        stage: Stage = self.graph.nodes[stage_id]["stage"]
        return stage

    def order(self) -> list[Stage]:
        """Stages in a deterministic dependency order (file order breaks ties)."""
        position = {s.id: i for i, s in enumerate(self.spec.stages)}
        ordered = nx.lexicographical_topological_sort(self.graph, key=position.__getitem__)
        return [self.stage(stage_id) for stage_id in ordered]

    @property
    def synthesis(self) -> SynthesisStage:
        return next(s for s in self.spec.stages if isinstance(s, SynthesisStage))


def _prompt_line(node: yaml.Node | None, index: int) -> int | None:
    """1-based file line where a stage's prompt text starts (block scalars start a line later)."""
    line = locate(node, ["stages", index, "prompt"])
    if line is None or not isinstance(node, yaml.MappingNode):
        return None
    stages = next((v for k, v in node.value if k.value == "stages"), None)
    prompt = None
    if isinstance(stages, yaml.SequenceNode) and isinstance(stages.value[index], yaml.MappingNode):
        prompt = next((v for k, v in stages.value[index].value if k.value == "prompt"), None)
    block = isinstance(prompt, yaml.ScalarNode) and prompt.style in ("|", ">")
    return line + 1 + (1 if block else 0)


def compile_protocol(text: str, path: Path) -> Protocol:
    """Parse, validate and compile a protocol; errors name the file, line and stage."""
    data, node = load_yaml(text, path, ProtocolError)
    if not isinstance(data, dict):
        raise ProtocolError(path, "a protocol file must be a mapping with 'name' and 'stages'")
    raw_stages: list[object] = data["stages"] if isinstance(data.get("stages"), list) else []

    def describe(loc: Sequence[int | str]) -> str:
        if len(loc) >= 2 and loc[0] == "stages" and isinstance(loc[1], int):
            raw = raw_stages[loc[1]] if loc[1] < len(raw_stages) else None
            stage_id = raw.get("id") if isinstance(raw, dict) else None
            prefix = f"stage '{stage_id}'" if stage_id else f"stage #{loc[1] + 1}"
            return ".".join([prefix, *map(str, loc[2:])])
        return ".".join(map(str, loc))

    spec = validate(ProtocolSpec, data, node, path, ProtocolError, describe_loc=describe)

    def fail(index: int, field: str, message: str) -> ProtocolError:
        line = locate(node, ["stages", index, field])
        return ProtocolError(
            path,
            message,
            line=line + 1 if line is not None else None,
            field=f"stage '{spec.stages[index].id}'.{field}",
        )

    graph: nx.DiGraph = nx.DiGraph()
    for index, stage in enumerate(spec.stages):
        if stage.id in graph:
            raise fail(index, "id", f"duplicate stage id '{stage.id}'")
        graph.add_node(stage.id, stage=stage, index=index, prompt_line=_prompt_line(node, index))
    for index, stage in enumerate(spec.stages):
        for field in ("sees", "after"):
            for ref in getattr(stage, field, []):
                if ref not in graph:
                    known = ", ".join(s.id for s in spec.stages)
                    raise fail(index, field, f"refers to undefined stage '{ref}' (stages: {known})")
                if ref == stage.id:
                    raise fail(index, field, "a stage cannot depend on itself")
                graph.add_edge(ref, stage.id)

    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        loop = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        first = graph.nodes[cycle[0][1]]["index"]
        raise fail(first, "sees", f"stages form a cycle ({loop}); repeat rounds with a loop")

    synthesis = [i for i, s in enumerate(spec.stages) if isinstance(s, SynthesisStage)]
    if len(synthesis) != 1:
        raise ProtocolError(
            path,
            f"a protocol needs exactly one synthesis stage, found {len(synthesis)}",
            field="stages",
        )
    final = spec.stages[synthesis[0]]
    if graph.out_degree(final.id) != 0:
        raise fail(synthesis[0], "id", "the synthesis stage must be last: no stage may follow it")
    unreachable = set(graph) - nx.ancestors(graph, final.id) - {final.id}
    if unreachable:
        index = min(graph.nodes[s]["index"] for s in unreachable)
        raise fail(
            index,
            "id",
            f"stage feeds nothing into the synthesis: {', '.join(sorted(unreachable))}",
        )

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Protocol(spec=spec, graph=graph, path=path, content_hash=digest)


def load_protocol_file(path: Path | str) -> Protocol:
    return compile_protocol(*read_text(path, ProtocolError))
