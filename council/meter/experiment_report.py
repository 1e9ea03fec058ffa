"""The typed summary of an experiment (``summary.json``): what the experiment's page, table and
records read by attribute.

``to_json()`` writes ``summary.json`` key for key as it was when the summary was a dict;
``ExperimentSummary.model_validate`` reads it back, summaries of earlier versions included (a
missing section defaults, and keys this version does not know are kept).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from council.meter.identifiability import Identifiability
from council.meter.intervals import Interval
from council.meter.run_report import ReportModel

# Keys this version does not know (an arm's other plan fields, a newer summary's sections) are
# kept and written back.
_KEEP = ConfigDict(frozen=True, extra="allow")


class ArmSummary(ReportModel):
    """One arm: its plan (name, models, personas), its units and its metrics' estimates."""

    model_config = _KEEP

    name: str
    models: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    units: int = 0
    failed_units: int = 0
    metrics: dict[str, Interval] = Field(default_factory=dict)  # metric -> its mean and CI
    identifiability: list[Identifiability] = Field(default_factory=list)


class PlaceboArm(ReportModel):
    model_config = _KEEP

    name: str
    of: str  # the arm it is the placebo twin of
    units: int = 0
    identifiability: list[Identifiability] = Field(default_factory=list)


class FailedUnit(ReportModel):
    model_config = _KEEP

    unit: str | None = None
    arm: str | None = None
    status: str | None = None
    error: str | None = None


class EndpointTest(ReportModel):
    """One test: ``b - a`` on ``metric``, its interval and p-value, and its role (a primary
    endpoint is read at its own p; a secondary one by its Holm-adjusted p)."""

    model_config = _KEEP

    metric: str
    a: str
    b: str
    difference: float | None = None
    ci95: list[float | None] | None = None
    n: int | None = None
    clusters: int | None = None
    interval_method: str | None = None
    p_value: float | None = None
    test_method: str | None = None
    role: str | None = None
    adjusted_p: float | None = None
    dropped: list[str] = Field(default_factory=list)


class PowerEstimate(ReportModel):
    """The power a primary endpoint had to detect ``effect``, and the questions 80% needs."""

    model_config = _KEEP

    metric: str
    a: str
    b: str
    effect: float | None = None
    questions: int | None = None
    # Absent where the data show no spread to compute them from, and then ``note`` says why.
    power: float | None = Field(default=None, exclude_if=lambda v: v is None)
    questions_for_80: int | None = Field(default=None, exclude_if=lambda v: v is None)
    note: str | None = Field(default=None, exclude_if=lambda v: v is None)


class CurvePoint(Interval):
    """One stage and round of an arm's curve: the mean over its questions, with its CI."""

    stage: str
    round: int = 0

    def json_fields(self) -> dict[str, Any]:
        return {"stage": self.stage, "round": self.round, **super().json_fields()}


class ExperimentSummary(ReportModel):
    """What an experiment measured: each arm's metrics, the tests between arms and against the
    placebo floor, the power, the variance split and the per-round curves."""

    model_config = _KEEP

    experiment: str
    title: str
    questions: int | None = None
    samples: int | None = None
    embedder: str | None = None
    arms: list[ArmSummary] = Field(default_factory=list)
    placebo_arms: list[PlaceboArm] = Field(default_factory=list)
    metric_descriptions: dict[str, str] = Field(default_factory=dict)
    methods: dict[str, str] = Field(default_factory=dict)  # interval, test, multiplicity, floor
    failed_units: list[FailedUnit] = Field(default_factory=list)
    short_replies_excluded: int = 0
    tests: list[EndpointTest] = Field(default_factory=list)
    comparisons: list[EndpointTest] = Field(default_factory=list)  # arm against arm
    placebo_floor: dict[str, Interval] = Field(default_factory=dict)  # arm -> its twin's mean
    power: list[PowerEstimate] = Field(default_factory=list)
    underpowered: bool = False
    # term -> its share of the variance (None: undefined), "residual", and "note" saying why
    # a share is undefined.
    decomposition: dict[str, float | str | None] | None = None
    decomposition_detail: dict[str, Any] | None = None
    curves: dict[str, list[CurvePoint]] = Field(default_factory=dict)

    @property
    def all_tests(self) -> list[EndpointTest]:
        """Every test; summaries written before tests had roles list only the comparisons."""
        return self.tests or self.comparisons
