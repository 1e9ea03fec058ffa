"""The engine: runs a protocol's stage graph with a seating and emits the run's events."""

from council.engine.deliberation import Deliberation
from council.engine.guards import DiversityProbe, GuardCondition, register_guard_condition
from council.engine.stage_kinds import StageKind, register_stage_kind
from council.records.settings import SamplingSettings

__all__ = [
    "Deliberation",
    "DiversityProbe",
    "GuardCondition",
    "SamplingSettings",
    "StageKind",
    "register_guard_condition",
    "register_stage_kind",
]
