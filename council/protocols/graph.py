"""Compiling a protocol file into networkx graphs of stages, and validating it.

The top level is a DAG whose nodes are stages and loops; each loop holds its own DAG of body
stages. An edge means "must finish first"; ``sees`` and ``after`` make the edges. A body stage
that sees itself reads its own previous round, which is the only way to repeat: a cycle
anywhere else is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from council.base.errors import ConfigError, ProtocolError
from council.protocols.spec import (
    ANONYMIZE_SWITCH,
    AnyStage,
    LoopStage,
    ProtocolSpec,
    SpeakingStage,
    Switch,
    SynthesisStage,
    VoteStage,
)
from council.text.sourcefile import load_yaml, locate, one_line, read_text, validate
from council.text.templates import check_syntax


@dataclass(frozen=True)
class Protocol:
    """A validated protocol: its spec, its stage graphs, where each stage sits in the file."""

    spec: ProtocolSpec
    graph: nx.DiGraph  # top level: stages and loops
    bodies: dict[str, nx.DiGraph]  # loop id -> the graph of its body stages
    path: Path
    content_hash: str
    stages: dict[str, AnyStage] = field(default_factory=dict)  # every stage, nested included
    loop_of: dict[str, str] = field(default_factory=dict)  # body stage id -> its loop id
    lines: dict[str, int] = field(default_factory=dict)  # stage id -> line of its prompt
    text: str = ""  # the file as compiled: a run records it so it can be resumed as it ran

    @property
    def name(self) -> str:
        return self.spec.name

    def stage(self, stage_id: str) -> AnyStage:
        return self.stages[stage_id]

    def prompt_line(self, stage_id: str) -> int:
        return self.lines.get(stage_id, 1)

    def order(self) -> list[AnyStage]:
        """Top-level stages in a deterministic dependency order (file order breaks ties)."""
        return self._ordered(self.graph)

    def body_order(self, loop_id: str) -> list[SpeakingStage]:
        return [s for s in self._ordered(self.bodies[loop_id]) if isinstance(s, SpeakingStage)]

    def speaking_stages(self) -> list[SpeakingStage]:
        """Every stage where seats speak, loops flattened, in run order."""
        stages: list[SpeakingStage] = []
        for stage in self.order():
            if isinstance(stage, LoopStage):
                stages += self.body_order(stage.id)
            else:
                stages.append(stage)
        return stages

    def _ordered(self, graph: nx.DiGraph) -> list[AnyStage]:
        position = {sid: i for i, sid in enumerate(self.stages)}
        ordered = nx.lexicographical_topological_sort(graph, key=position.__getitem__)
        return [self.stages[sid] for sid in ordered]

    def switch_settings(self, requested: Mapping[str, bool] | None = None) -> dict[str, bool]:
        """Every switch of this protocol, on or off: ``requested`` over the defaults. An unknown
        switch, or a locked one turned off, is refused in one line saying why."""
        declared = {ANONYMIZE_SWITCH: Switch(says="show other seats as Member A, B, ...")}
        declared |= self.spec.switches
        settings = {name: switch.default for name, switch in declared.items()}
        for name, on in (requested or {}).items():
            if name not in declared:
                known = ", ".join(declared)
                raise ConfigError(f"protocol '{self.name}' has no switch '{name}' ({known})")
            locked = declared[name].locked
            if locked and not on:
                raise ConfigError(
                    f"protocol '{self.name}': switch '{name}' cannot be turned off: {locked}"
                )
            settings[name] = on
        return settings

    @property
    def synthesis(self) -> SynthesisStage:
        return next(s for s in self.spec.stages if isinstance(s, SynthesisStage))


class _Compiler:
    def __init__(self, spec: ProtocolSpec, node: yaml.Node | None, path: Path) -> None:
        self.spec, self.node, self.path = spec, node, path
        self.stages: dict[str, AnyStage] = {}
        self.locs: dict[str, list[int | str]] = {}
        self.loop_of: dict[str, str] = {}
        self.graph: nx.DiGraph = nx.DiGraph()
        self.bodies: dict[str, nx.DiGraph] = {}

    def fail(self, stage_id: str, field: str, message: str) -> ProtocolError:
        line = locate(self.node, [*self.locs[stage_id], field])
        return ProtocolError(
            self.path,
            one_line(message),
            line=line + 1 if line is not None else None,
            field=f"stage '{stage_id}'.{field}",
        )

    def register(self) -> None:
        for index, stage in enumerate(self.spec.stages):
            self._add(stage, ["stages", index])
            self.graph.add_node(stage.id)
            if isinstance(stage, LoopStage):
                self.bodies[stage.id] = nx.DiGraph()
                for inner, body in enumerate(stage.stages):
                    self._add(body, ["stages", index, "stages", inner])
                    self.loop_of[body.id] = stage.id
                    self.bodies[stage.id].add_node(body.id)

    def _add(self, stage: AnyStage, loc: list[int | str]) -> None:
        duplicate = stage.id in self.stages
        self.locs[stage.id] = loc  # the later one, so the error points at the duplicate
        if duplicate:
            raise self.fail(stage.id, "id", f"duplicate stage id '{stage.id}'")
        if isinstance(stage, VoteStage) and stage.ballot is None:
            # A vote stage that names no ballot scale uses its protocol's.
            stage = stage.model_copy(update={"ballot": self.spec.ballot})
        self.stages[stage.id] = stage

    def connect(self) -> None:
        for stage in self.stages.values():
            refs = (
                ("sees", "after", "checks", "watches", "novelty_against", "hemlock_against")
                if not isinstance(stage, LoopStage)
                else ("after",)
            )
            for field_name in refs:
                value = getattr(stage, field_name, None)
                for ref in [value] if isinstance(value, str) else value or []:
                    self._edge(stage, field_name, ref)

    def _edge(self, stage: AnyStage, field_name: str, ref: str) -> None:
        if ref not in self.stages:
            known = ", ".join(self.stages)
            raise self.fail(
                stage.id, field_name, f"refers to undefined stage '{ref}' (stages: {known})"
            )
        here, there = self.loop_of.get(stage.id), self.loop_of.get(ref)
        if ref == stage.id and here is None:
            raise self.fail(stage.id, field_name, "a stage cannot depend on itself outside a loop")
        if ref == here:
            raise self.fail(stage.id, field_name, f"a stage cannot depend on its own loop '{ref}'")
        if here is not None and there == here:
            if ref != stage.id:  # seeing itself means its previous round: no edge
                self.bodies[here].add_edge(ref, stage.id)
            return
        source = there or ref  # a stage inside another loop is ready when that loop is done
        target = here or stage.id
        if source == target:
            raise self.fail(stage.id, field_name, f"'{ref}' is inside the same loop")
        self.graph.add_edge(source, target)

    def check_cycles(self) -> None:
        for graph in [self.graph, *self.bodies.values()]:
            try:
                cycle = nx.find_cycle(graph)
            except nx.NetworkXNoCycle:
                continue
            loop = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
            raise self.fail(
                cycle[0][1], "sees", f"stages form a cycle ({loop}); repeat rounds with a loop"
            )

    def check_kinds(self) -> None:
        for stage in self.stages.values():
            if isinstance(stage, LoopStage):
                if stage.until is not None:
                    self._check_until(stage)
                continue
            problem = stage.reference_problem(self.stages)
            if problem is not None:
                raise self.fail(stage.id, *problem)
            selector = stage.selector_problem()
            if selector is not None:
                raise self.fail(stage.id, "seats", selector)
            if not stage.may_loop and stage.id in self.loop_of:
                raise self.fail(stage.id, "kind", f"the {stage.kind} cannot sit inside a loop")
            if stage.votes_when is not None:
                self._check_votes_when(stage)

    def _check_votes_when(self, stage: SpeakingStage) -> None:
        if not stage.collects_votes:
            raise self.fail(
                stage.id, "votes_when", "only a vote stage can be switched to a plain one"
            )
        if stage.votes_when not in self.spec.switches:
            declared = ", ".join(self.spec.switches) or "none"
            raise self.fail(
                stage.id,
                "votes_when",
                f"switch '{stage.votes_when}' is not declared under 'switches' "
                f"(declared: {declared})",
            )

    def _check_until(self, loop: LoopStage) -> None:
        until = loop.until
        assert until is not None
        for field_name, ref in (("vote", until.vote), ("moderator", until.moderator)):
            if ref is None:
                continue
            if self.loop_of.get(ref) != loop.id:
                raise self.fail(loop.id, "until", f"'{ref}' is not a stage of this loop")
            if field_name == "vote" and not getattr(self.stages[ref], "collects_votes", False):
                raise self.fail(
                    loop.id, "until", f"'{ref}' collects no votes: 'agreement' needs a vote stage"
                )

    def check_synthesis(self) -> None:
        synthesis = [s for s in self.spec.stages if isinstance(s, SynthesisStage)]
        if len(synthesis) != 1:
            raise ProtocolError(
                self.path,
                f"a protocol needs exactly one synthesis stage, found {len(synthesis)}",
                field="stages",
            )
        final = synthesis[0].id
        # An auditor stage reads the verdict, so it alone comes after it.
        stages = self.stages.items()
        audits = {sid for sid, stage in stages if getattr(stage, "follows_synthesis", False)}
        if set(self.graph.successors(final)) - audits:
            raise self.fail(final, "id", "the synthesis stage must be last: no stage may follow it")
        unreachable = set(self.graph) - nx.ancestors(self.graph, final) - {final} - audits
        if unreachable:
            first = next(s for s in self.stages if s in unreachable)
            raise self.fail(
                first,
                "id",
                f"stage feeds nothing into the synthesis: {', '.join(sorted(unreachable))}",
            )

    def prompt_lines(self) -> dict[str, int]:
        lines: dict[str, int] = {}
        for stage_id, loc in self.locs.items():
            line = _prompt_line(self.node, loc)
            if line is not None:
                lines[stage_id] = line
        return lines


def _prompt_line(node: yaml.Node | None, loc: list[int | str]) -> int | None:
    """1-based file line where a stage's prompt text starts (block scalars start a line later)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return None
    if not isinstance(node, yaml.MappingNode):
        return None
    prompt = next((v for k, v in node.value if k.value == "prompt"), None)
    if not isinstance(prompt, yaml.ScalarNode):
        return None
    return prompt.start_mark.line + 1 + (1 if prompt.style in ("|", ">") else 0)


def _describe(raw: Any, loc: Sequence[int | str]) -> str:
    """``['stages', 1, 'stages', 0, 'sees']`` -> ``stage 'revise'.sees`` (the innermost stage)."""
    prefix, rest, node = "", list(loc), raw
    while len(rest) >= 2 and rest[0] == "stages" and isinstance(rest[1], int):
        items = node.get("stages") if isinstance(node, dict) else None
        node = items[rest[1]] if isinstance(items, list) and rest[1] < len(items) else None
        stage_id = node.get("id") if isinstance(node, dict) else None
        prefix = f"stage '{stage_id}'" if stage_id else f"stage #{rest[1] + 1}"
        rest = rest[2:]
    return ".".join([prefix, *map(str, rest)]) if prefix else ".".join(map(str, rest))


def compile_protocol(text: str, path: Path) -> Protocol:
    """Parse, validate and compile a protocol; errors name the file, line and stage."""
    data, node = load_yaml(text, path, ProtocolError)
    if not isinstance(data, dict):
        raise ProtocolError(path, "a protocol file must be a mapping with 'name' and 'stages'")
    spec = validate(
        ProtocolSpec, data, node, path, ProtocolError, describe_loc=lambda loc: _describe(data, loc)
    )
    compiler = _Compiler(spec, node, path)
    compiler.register()
    compiler.connect()
    compiler.check_cycles()
    compiler.check_kinds()
    compiler.check_synthesis()
    lines = compiler.prompt_lines()
    for stage in compiler.stages.values():
        if isinstance(stage, SpeakingStage):  # a broken prompt fails here, before any call
            check_syntax(
                stage.prompt,
                path=path,
                first_line=lines.get(stage.id, 1),
                error=ProtocolError,
                field=f"stage '{stage.id}'.prompt",
            )
    return Protocol(
        spec=spec,
        graph=compiler.graph,
        bodies=compiler.bodies,
        path=path,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        stages=compiler.stages,
        loop_of=compiler.loop_of,
        lines=lines,
        text=text,
    )


def load_protocol_file(path: Path | str) -> Protocol:
    return compile_protocol(*read_text(path, ProtocolError))
