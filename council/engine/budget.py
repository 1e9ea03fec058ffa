"""Per-run budgets: tokens, dollars where known, wall time. A run that reaches one stops
cleanly: no new call starts, finished turns are kept, the reason is recorded."""

from __future__ import annotations

import time

from council.base.errors import RunFailed
from council.records.run import Turn
from council.records.settings import Budget

__all__ = ["Budget", "BudgetExceeded", "BudgetTracker"]


class BudgetExceeded(RunFailed):
    """The run stopped because a budget ran out (status "stopped", not "failed")."""


class BudgetTracker:
    """Spending so far, and what the calls in flight could still spend.

    Each call reserves its worst case before it starts (its prompt, estimated generously, plus
    its ``max_tokens``), so a thousand parallel stages cannot overrun a token budget: the calls
    that would not fit are never made. Wall time counts from ``start()``, the run's start.
    """

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget or Budget()
        self.tokens = 0
        self.usd = 0.0
        self.reserved = 0
        self.calls = 0  # calls started, less those answered from the ledger
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def reserve(self, worst_case_tokens: int) -> int:
        """Reserve a call's worst case; raises before a call the budget could not cover."""
        self.check()
        b = self.budget
        if (
            b.max_tokens is not None
            and self.tokens + self.reserved + worst_case_tokens > b.max_tokens
        ):
            raise BudgetExceeded(
                f"token budget: {self.tokens} spent and {self.reserved} reserved of "
                f"{b.max_tokens}; the next call could take {worst_case_tokens}"
            )
        self.reserved += worst_case_tokens
        self.calls += 1
        return worst_case_tokens

    def settle(self, reservation: int, turn: Turn) -> None:
        self.reserved -= reservation
        self.calls -= turn.reused  # a reused answer made no call
        self.add(turn)

    def settle_usage(self, reservation: int, tokens: int, usd: float) -> None:
        """Settle a call that is no turn of the run (a guard's no-persona baseline sample)."""
        self.reserved -= reservation
        self.tokens += tokens
        self.usd += usd

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
        if b.max_calls is not None and self.calls >= b.max_calls:
            raise BudgetExceeded(f"call budget spent: {self.calls} of {b.max_calls} calls")
        remaining = self.remaining_wall_s()
        if remaining is not None and remaining <= 0:
            raise BudgetExceeded(f"wall-time budget spent: {b.max_wall_s:g} s")


def worst_case_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    """A call's most likely ceiling: its prompt at three characters a token (English runs near
    four), plus every token it may generate."""
    prompt_chars = sum(len(m.get("content", "")) for m in messages)
    return prompt_chars // 3 + 8 * len(messages) + max_tokens
