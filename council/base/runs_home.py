"""The runs home: where runs are recorded when no folder is given."""

from __future__ import annotations

import os
from pathlib import Path

# Runs are recorded in one home shared by every working directory, so `council runs list`
# finds yesterday's run wherever it was convened. A project (council.toml `out`), a flag
# (`--out`) or the environment moves it.
RUNS_ENV = "COUNCIL_RUNS"


class RunsHome:
    """The default runs folder, looked up when a run starts (not when the module loads), so
    a changed ``COUNCIL_RUNS`` takes effect."""

    def __repr__(self) -> str:
        return "RUNS_HOME"

    def path(self) -> Path:
        if os.environ.get(RUNS_ENV):
            return Path(os.environ[RUNS_ENV]).expanduser()
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data).expanduser() / "council" / "runs"


RUNS_HOME = RunsHome()


def runs_location(value: Path | str | RunsHome) -> Path:
    """A runs folder as given, or the runs home."""
    return value.path() if isinstance(value, RunsHome) else Path(value)
