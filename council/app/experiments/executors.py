"""Where an experiment's units run: here, one after another, or spread over a Ray cluster.

An ``Executor`` maps the one unit function over the units still to do and yields each
outcome as it finishes; the driver records it before asking for the next, so whatever was
yielded is on record and a rerun skips it. ``make_executor`` is the one place that picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

from council.base.errors import ConfigError
from council.seats.gate import LocalGate, ProviderLimit, install_call_gate
from council.seats.litellm_model import warm_up

T = TypeVar("T")
R = TypeVar("R")

RAY_INSTALL_HINT = "--ray needs Ray: pip install 'persona-council[ray]'"


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        """``fn`` over ``tasks``; each result as soon as it is ready, in any order."""
        ...

    def close(self) -> None:
        """Give back what the executor started (workers, servers, limits)."""
        ...


class InProcessExecutor:
    """Today's loop: each unit in this process, in order. Rate limits, if any, apply here."""

    name = "in-process"

    def __init__(self, rate_limits: Mapping[str, ProviderLimit] | None = None) -> None:
        self._limited = bool(rate_limits)
        if rate_limits:
            install_call_gate(LocalGate(dict(rate_limits)))
            warm_up()

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        if self._limited:
            install_call_gate(None)


def make_executor(
    executor: str | Executor | None = None,
    *,
    address: str | None = None,
    rate_limits: Mapping[str, ProviderLimit] | None = None,
) -> Executor:
    """``"in-process"`` (the default), ``"ray"`` (``address``: None starts or finds a local
    cluster, ``"auto"`` joins the running one, else a cluster address), or an executor."""
    if executor is None or executor == "in-process":
        return InProcessExecutor(rate_limits)
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(RAY_INSTALL_HINT) from None
        from council.app.experiments.ray_executor import RayExecutor

        return RayExecutor(address=address, rate_limits=dict(rate_limits or {}))
    if isinstance(executor, str):
        raise ConfigError(f"unknown executor '{executor}': 'in-process' or 'ray'")
    return executor
