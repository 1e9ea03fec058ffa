"""Report objects for Python and notebooks: one run's diversity (``RunReport``) or an
experiment's summary (``ExperimentReport``), each as JSON, HTML, a text table, tables as
records (and pandas data frames when pandas is installed) and CSV files.

Each wraps the meter's typed model (``RunDiversity``, ``ExperimentSummary``), which every view
reads by attribute; a plain mapping (a report's JSON, a ``summary.json``) is read into it."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from council.meter.experiment_report import ArmSummary, EndpointTest, ExperimentSummary
from council.meter.run_report import ReportModel, RunDiversity, StageDiversity
from council.records.verdicts import VerdictAudit
from council.reports.experiment_page import experiment_report_html
from council.reports.html import run_report_html
from council.reports.page import write
from council.reports.records import Records, experiment_records, run_records, write_csv
from council.reports.table import experiment_table, run_table

Model = TypeVar("Model", bound=ReportModel)


class Report(Generic[Model]):
    """What a report holds (``model``, ``to_json()``) and every way to show it."""

    _model: type[Model]
    _html: Callable[[Model], str]
    _text: Callable[[Model], str]
    _records: Callable[[Model], dict[str, Records]]

    def __init__(self, data: Model | Mapping[str, Any]) -> None:
        model = type(self)._model
        self.model: Model = data if isinstance(data, model) else model.model_validate(data)

    def to_json(self) -> dict[str, Any]:
        """The numbers under self-explaining keys, as ``--json`` prints them (a copy; no NaN)."""
        return self.model.to_json()

    def to_html(self) -> str:
        """One self-contained HTML page: inline CSS and SVG, no script, nothing fetched."""
        return type(self)._html(self.model)

    def __str__(self) -> str:
        return type(self)._text(self.model)

    def tables(self) -> dict[str, Records]:
        """Every table of the report as records: ``{name: [{column: value}, ...]}``."""
        return type(self)._records(self.model)

    def frames(self) -> dict[str, Any]:
        """Every table as a pandas ``DataFrame``; pandas is not a dependency of council."""
        try:
            import pandas as pd
        except ImportError:
            from council.base.errors import ConfigError

            raise ConfigError(
                "pandas is not installed: use .tables() for records, or pip install pandas"
            ) from None
        return {name: pd.DataFrame.from_records(rows) for name, rows in self.tables().items()}

    def write_html(self, path: Path | str) -> Path:
        return write(path, self.to_html())

    def write_csv(self, folder: Path | str) -> list[Path]:
        """One CSV file per table in ``folder``."""
        return write_csv(self.tables(), folder)

    def _repr_html_(self) -> str:
        # A sandboxed frame keeps the page's styles and its Content-Security-Policy to itself.
        return (
            f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" sandbox="" '
            'style="width: 100%; height: 900px; border: 1px solid #ddd"></iframe>'
        )


class RunReport(Report[RunDiversity]):
    """How different the seats of one run were: ``council.measure(run)``."""

    _model = RunDiversity
    _html = staticmethod(run_report_html)
    _text = staticmethod(run_table)
    _records = staticmethod(run_records)

    def __repr__(self) -> str:
        return f"RunReport(run_id={self.run_id!r}, stages={len(self.stages)})"

    @property
    def run_id(self) -> str:
        return self.model.run_id

    @property
    def stages(self) -> list[StageDiversity]:
        return list(self.model.stages)

    @property
    def audits(self) -> list[VerdictAudit]:
        """The audits of the run's verdict (``council audit``), each with its findings."""
        return list(self.model.audits)


class ExperimentReport(Report[ExperimentSummary]):
    """An experiment's summary: ``Experiment(...).summary()``."""

    _model = ExperimentSummary
    _html = staticmethod(experiment_report_html)
    _text = staticmethod(experiment_table)
    _records = staticmethod(experiment_records)

    def __repr__(self) -> str:
        arms = [a.name for a in self.model.arms]
        return f"ExperimentReport(title={self.model.title!r}, arms={arms!r})"

    @property
    def arms(self) -> list[ArmSummary]:
        return list(self.model.arms)

    @property
    def comparisons(self) -> list[EndpointTest]:
        return list(self.model.comparisons)
