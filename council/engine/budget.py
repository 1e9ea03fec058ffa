"""Per-run budgets: tokens, dollars where known, wall time. A run that reaches one stops
cleanly: no new call starts, finished turns are kept, the reason is recorded."""

from __future__ import annotations

import time

from council.errors import RunFailed
from council.records.run import Turn
from council.records.settings import Budget

__all__ = ["Budget", "BudgetExceeded", "BudgetTracker"]


class BudgetExceeded(RunFailed):
    """The run stopped because a budget ran out (status "stopped", not "failed")."""


class BudgetTracker:
    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget or Budget()
        self.tokens = 0
        self.usd = 0.0
        self.started = time.monotonic()

    def add(self, turn: Turn) -> None:
        if not turn.reused:  # answers reused from the ledger cost nothing again
            self.tokens += (turn.prompt_tokens or 0) + (turn.completion_tokens or 0)
            self.usd += turn.cost_usd or 0.0

    def remaining_wall_s(self) -> float | None:
        if self.budget.max_wall_s is None:
            return None
        return self.budget.max_wall_s - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise before a new call when any budget is spent."""
        b = self.budget
        if b.max_tokens is not None and self.tokens >= b.max_tokens:
            raise BudgetExceeded(f"token budget spent: {self.tokens} of {b.max_tokens} tokens")
        if b.max_usd is not None and self.usd >= b.max_usd:
            raise BudgetExceeded(f"cost budget spent: ${self.usd:.4f} of ${b.max_usd:.4f}")
        remaining = self.remaining_wall_s()
        if remaining is not None and remaining <= 0:
            raise BudgetExceeded(f"wall-time budget spent: {b.max_wall_s:g} s")
