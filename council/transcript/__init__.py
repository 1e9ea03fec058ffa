"""Run records and the run folder: a JSONL event log and a Markdown transcript."""

from council.transcript.records import RunHeader, RunResult, SeatAssignment, Turn
from council.transcript.rundir import RunDirectory, new_run_id

__all__ = ["RunDirectory", "RunHeader", "RunResult", "SeatAssignment", "Turn", "new_run_id"]
