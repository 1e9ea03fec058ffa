"""Run records, and the run folder (``council.transcript.rundir``): events and a transcript."""

from council.transcript.records import RunHeader, RunResult, SeatAssignment, Tally, Turn

__all__ = ["RunHeader", "RunResult", "SeatAssignment", "Tally", "Turn"]
