"""Panel profiles on disk: ``<runs>/.panels/<panel key>.json``, one per panel (issue 31).

A finished run that voted adds its last vote's stances to its panel's profile
(``record_run``); the next run of the panel reads them (``load_profile``) to estimate how
many independent votes its seats carry. The file is rewritten whole under a lock and
replaced atomically, so two runs finishing at once both land and a reader never sees half a
file. A profile that cannot be read (hand-edited, another version's) is set aside with a
note rather than stopping a run: it is a measurement's input, not the record.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import ValidationError

from council.base.locks import locked
from council.records.panel import PanelProfile, PanelRun, panel_key, panel_seats
from council.records.record import utc_now
from council.records.run import RunResult

PANELS_DIR = ".panels"


def profile_path(runs_dir: Path, key: str) -> Path:
    return runs_dir / PANELS_DIR / f"{key}.json"


def load_profile(runs_dir: Path, key: str) -> PanelProfile | None:
    """The panel's profile, or None when it has none (or its file cannot be read)."""
    path = profile_path(runs_dir, key)
    try:
        return PanelProfile.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"council: panel profile {path} unreadable, ignored: {first}", file=sys.stderr)
        return None


def run_stances(result: RunResult) -> PanelRun | None:
    """The run's last vote as a profile entry: its counted stances; None when it took none."""
    votes = [t for t in result.tallies if t.kind == "vote" and t.rule != "median"]
    if not votes:
        return None
    last = votes[-1]
    stances = {
        b.seat: b.stance for b in last.ballots if b.valid and b.stance and b.stance != "abstain"
    }
    return PanelRun(run_id=result.run_id, stage=last.stage, stances=stances, recorded_at=utc_now())


def record_run(runs_dir: Path, result: RunResult) -> PanelProfile | None:
    """Add a finished run's stances to its panel's profile; the profile as saved, or None
    when the run took no vote or the profile could not be written (said on stderr)."""
    entry = run_stances(result)
    if entry is None or result.status != "completed":
        return None
    key = panel_key(result.seats)
    path = profile_path(runs_dir, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(path.parent):
            profile = load_profile(runs_dir, key) or PanelProfile(
                key=key, seats=panel_seats(result.seats)
            )
            profile = profile.with_run(entry)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(profile.model_dump_json(indent=1), encoding="utf-8")
            partial.replace(path)
    except OSError as exc:
        print(f"council: panel profile {path} not updated: {exc.strerror}", file=sys.stderr)
        return None
    return profile
