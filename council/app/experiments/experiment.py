"""Experiments from Python: ``council.Experiment(arms=[council.Arm(...), ...], questions=...)``,
then ``.run()`` and ``.summary()``. The arms say what is compared (the same cards on different
models, or different cards on the same model); nothing is named by a magic string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.app.experiments.design import DEFAULT_EFFECT
from council.app.experiments.executors import Executor
from council.app.experiments.folder import check_plan, experiment_embedder
from council.app.experiments.planning import PlanReport, plan_experiment
from council.app.experiments.runner import Arm, ExperimentPlan, read_questions, run_plan
from council.app.experiments.summary import summarise, write_summary
from council.app.measure import REPORT_FILE
from council.base.errors import ConfigError
from council.meter.embedders import Embedder
from council.reports.objects import ExperimentReport
from council.seats.gate import ProviderLimit

TITLES = {
    "diversity": "Single model against cross-provider seating",
    "variants": "Topic-labelled against framework-grounded personas",
    "mixed": "Experiment",
}


@dataclass(frozen=True)
class UnitCounts:
    """What one ``Experiment.run()`` did: units (and voice samples) run, skipped because they
    completed before, and failed (retried on the next run)."""

    ran: int
    skipped: int
    failed: int


class Experiment:
    """The same question set put to every arm, ``samples`` times each; every unit is one
    recorded run under ``out``, and an interrupted experiment continues where it stopped."""

    def __init__(
        self,
        arms: Sequence[Arm],
        questions: Sequence[str] | str | Path,
        *,
        samples: int = 3,
        out: Path | str = "experiments/latest",
        protocol: str = "council",
        title: str | None = None,
        embedder: str | Embedder | None = None,
        max_tokens: int = 80,
        temperature: float = 0.8,
        baseline_samples: int = 8,
        placebo: bool = True,
        effect: float = DEFAULT_EFFECT,
        endpoints: Mapping[str, str] | None = None,
        executor: str | Executor | None = None,
        ray_address: str | None = None,
        rate_limits: Mapping[str, ProviderLimit] | None = None,
    ) -> None:
        """``executor="ray"`` runs the units as Ray tasks (a cluster at ``ray_address``, or a
        local one); ``rate_limits`` holds each provider's calls under its requests and tokens
        per minute, shared by every worker."""
        if isinstance(questions, str | Path):
            questions = read_questions(questions)  # a file, one question per line
        if not all(isinstance(arm, Arm) for arm in arms):
            raise ConfigError("arms must be council.Arm(name, models=..., personas=...)")
        self.plan = ExperimentPlan(
            arms=list(arms),
            questions=list(questions),
            samples=samples,
            out=Path(out),
            protocol=protocol,
            max_tokens=max_tokens,
            temperature=temperature,
            baseline_samples=baseline_samples,
            placebo=placebo,
            endpoints=dict(endpoints or {}),
        )
        self.title = title or TITLES[self.plan.kind]
        self.embedder = embedder
        self.effect = effect  # the difference the power analysis asks about
        self.execution: dict[str, Any] = {
            "executor": executor,
            "ray_address": ray_address,
            "rate_limits": rate_limits,
        }

    @classmethod
    def across_models(
        cls, personas: Sequence[str], arms: Mapping[str, str | Sequence[str]], **options: Any
    ) -> Experiment:
        """The same cards on each arm's models: ``{"single": "m1", "cross": ["m1", "m2"]}``."""
        return cls(
            [Arm(name, _names(models), list(personas)) for name, models in arms.items()], **options
        )

    @classmethod
    def card_variants(cls, bases: Sequence[str], model: str, **options: Any) -> Experiment:
        """Each base's topic-labelled cards (``NAME-topic``) against its framework-grounded
        ones (``NAME-framework``), on one model."""
        arms = [
            Arm(style, [model], [f"{base}-{style}" for base in bases])
            for style in ("topic", "framework")
        ]
        return cls(arms, **options)

    @property
    def out(self) -> Path:
        return self.plan.out

    @property
    def arms(self) -> list[Arm]:
        return list(self.plan.arms)

    def __repr__(self) -> str:
        arms = ", ".join(arm.name for arm in self.plan.arms)
        return (
            f"Experiment({self.plan.kind}: arms {arms}; {len(self.plan.questions)} questions "
            f"x {self.plan.samples} samples; out={str(self.plan.out)!r})"
        )

    def run(
        self, progress: Callable[[str], None] | None = None, *, retry_failed: bool = True
    ) -> UnitCounts:
        """Run every unit that has not completed (failed ones again, unless ``retry_failed``
        is false), then write ``summary.json`` and ``report.html`` into ``out``."""
        counts = run_plan(
            self.plan, progress or (lambda _: None), retry_failed=retry_failed, **self.execution
        )
        self.summary()
        return UnitCounts(counts["ran"], counts["skipped"], counts["failed"])

    def plan_report(self, pilot: Path | str | None = None) -> PlanReport:
        """Before any call: the calls, tokens and cost this experiment will spend, and its power
        to detect ``effect`` from a pilot's variance components (default: the shipped
        experiment's)."""
        return plan_experiment(self.plan, effect=self.effect, pilot=Path(pilot) if pilot else None)

    def summary(self) -> ExperimentReport:
        """Measure what has run so far: every metric per arm with its interval on question
        means, each arm against its placebo floor, the comparisons between arms (paired by
        question, Holm-adjusted but for the primary endpoint), identifiability with whole runs
        held out, the variance split and the power of each primary endpoint. Writes
        ``summary.json`` and ``report.html`` into ``out``."""
        check_plan(self.plan.out, self.plan.to_json(), create=False)  # nothing run: refused
        embedder = experiment_embedder(self.embedder, self.plan.out)
        data = summarise(self.plan.out, embedder, title=self.title, effect=self.effect)
        write_summary(self.plan.out, data)
        report = ExperimentReport(data)
        report.write_html(self.plan.out / REPORT_FILE)
        return report


def _names(models: str | Sequence[str]) -> list[str]:
    return [models] if isinstance(models, str) else list(models)
