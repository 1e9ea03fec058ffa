"""Protocols: YAML files of stages compiled into a networkx graph the engine runs."""

from council.protocols.graph import Protocol, compile_protocol, load_protocol_file
from council.protocols.library import available_protocols, find_protocol
from council.protocols.spec import (
    ProtocolSpec,
    ResponseStage,
    Stage,
    StatementStage,
    SynthesisStage,
)

__all__ = [
    "Protocol",
    "ProtocolSpec",
    "ResponseStage",
    "Stage",
    "StatementStage",
    "SynthesisStage",
    "available_protocols",
    "compile_protocol",
    "find_protocol",
    "load_protocol_file",
]
