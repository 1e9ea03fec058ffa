"""Report objects for Python and notebooks: one run's diversity (``RunReport``) or an
experiment's summary (``ExperimentReport``), each as JSON, HTML, a text table, tables as
records (and pandas data frames when pandas is installed) and CSV files."""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from council.reports.experiment_page import experiment_report_html
from council.reports.html import run_report_html
from council.reports.page import write
from council.reports.records import Records, experiment_records, run_records, write_csv
from council.reports.table import experiment_table, run_table
from council.reports.values import clean_json


class Report:
    """What a report holds (``to_json()``) and every way to show it."""

    _html: Callable[[Mapping[str, Any]], str]
    _text: Callable[[Mapping[str, Any]], str]
    _records: Callable[[Mapping[str, Any]], dict[str, Records]]

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data: dict[str, Any] = clean_json(dict(data))  # no NaN reaches JSON or a page

    def to_json(self) -> dict[str, Any]:
        """The numbers under self-explaining keys, as ``--json`` prints them (a copy)."""
        return copy.deepcopy(self._data)

    def to_html(self) -> str:
        """One self-contained HTML page: inline CSS and SVG, no script, nothing fetched."""
        return type(self)._html(self._data)

    def __str__(self) -> str:
        return type(self)._text(self._data)

    def tables(self) -> dict[str, Records]:
        """Every table of the report as records: ``{name: [{column: value}, ...]}``."""
        return type(self)._records(self._data)

    def frames(self) -> dict[str, Any]:
        """Every table as a pandas ``DataFrame``; pandas is not a dependency of council."""
        try:
            import pandas as pd
        except ImportError:
            from council.errors import ConfigError

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


class RunReport(Report):
    """How different the seats of one run were: ``council.measure(run)``."""

    _html = staticmethod(run_report_html)
    _text = staticmethod(run_table)
    _records = staticmethod(run_records)

    def __repr__(self) -> str:
        return f"RunReport(run_id={self._data.get('run_id')!r}, stages={len(self.stages)})"

    @property
    def run_id(self) -> str:
        return str(self._data.get("run_id"))

    @property
    def stages(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self._data.get("stages") or []))


class ExperimentReport(Report):
    """An experiment's summary: ``Experiment(...).summary()``."""

    _html = staticmethod(experiment_report_html)
    _text = staticmethod(experiment_table)
    _records = staticmethod(experiment_records)

    def __repr__(self) -> str:
        arms = [a.get("name") for a in self._data.get("arms") or []]
        return f"ExperimentReport(title={self._data.get('title')!r}, arms={arms!r})"

    @property
    def arms(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self._data.get("arms") or []))

    @property
    def comparisons(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self._data.get("comparisons") or []))
