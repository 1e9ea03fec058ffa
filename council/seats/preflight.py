"""Pre-flight: what each seat's model needs before its first call, checked before any call.

A seat's model says what it needs (``ChatModel.preflight``): a hosted model its key variable
(``detect.missing_keys``, what ``council models`` says too), a model sent to an endpoint a
server answering there (a TCP connect to its host and port, loopback included), a bundled
model its files installed, a command seat its program on PATH. The seat itself adds what it
asks of its model: a reasoning effort, which only a model litellm's map knows to reason takes.
Nothing here sends a request to a model or spends a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from council.base.errors import PreflightError, SeatProblem
from council.seats.model import Need
from council.seats.needs import OTHER_MODEL
from council.seats.seat import Seat


async def seat_problems(seats: Sequence[Seat]) -> list[SeatProblem]:
    """One problem for each seat whose model cannot be called here, in seat order."""
    found = await asyncio.gather(*(seat_problem(seat) for seat in seats))
    return [problem for problem in found if problem is not None]


async def seat_problem(seat: Seat) -> SeatProblem | None:
    need = await seat.model.preflight()
    if need is None and seat.reasoning_effort and takes_effort(seat) is False:
        need = Need(
            f"to take reasoning_effort={seat.reasoning_effort}, which it does not",
            f"drop --reasoning-effort for {seat.name}, or {OTHER_MODEL}",
        )
    if need is None:
        return None
    return SeatProblem(seat.name, seat.model.model, need.what, need.fix)


def takes_effort(seat: Seat) -> bool | None:
    """Whether the seat's model takes a reasoning effort: as litellm's map says for a hosted
    model (the map ``reasons`` reads); None where nobody knows (a server of the user's own,
    a bundled model, a test double), which is never refused."""
    if not getattr(seat.model, "hosted", False):
        return None
    return seat.model.reasons


async def absent_seats(seats: Sequence[Seat], *, allow_absent: bool) -> dict[str, str]:
    """seat -> why it sits out, for the seats that fail the pre-flight when the council may
    convene without them; otherwise ``PreflightError``, one line per seat, before any call."""
    problems = await seat_problems(seats)
    if problems and not allow_absent:
        raise PreflightError(problems)
    return {p.seat: f"pre-flight: {p.model} needs {p.need} ({p.fix})" for p in problems}
