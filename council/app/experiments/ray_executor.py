"""Units as Ray tasks: one model server per node, one rate limiter per cluster.

Imported only when an experiment asks for Ray (``import council`` never imports it).

- Each unit is a task; its outcome comes back to the driver, which records it in the one
  ledger as it finishes (at most ``max_in_flight`` are out at once, so the driver's memory
  and a kill's loss stay bounded).
- The bundled models are served by a ``NodeModels`` actor pinned to each node, started on the
  first request for that node and shared by every worker process there.
- Hosted providers are called from the workers directly, each call first asking the one
  ``SharedLimits`` actor when it may start (requests and tokens per minute; a 429 with
  Retry-After holds back every worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from council.seats.gate import ProviderLimit, RateLimits, install_call_gate, limit_key
from council.seats.litellm_model import warm_up
from council.seats.local import LOCAL_SERVERS

T = TypeVar("T")
R = TypeVar("R")

NAMESPACE = "council"
CANCEL_WAIT_S = 30.0


@ray.remote(num_cpus=0)
class SharedLimits:
    """The cluster's one rate-limit policy; workers ask it, it answers with a wait."""

    def __init__(self, limits: dict[str, ProviderLimit]) -> None:
        self.policy = RateLimits(limits, time.time)

    def reserve(self, key: str, tokens: float) -> float:
        """When (epoch seconds) the call may start. A time, not a wait: how long the answer
        takes to reach the worker does not then bunch the calls up."""
        return time.time() + self.policy.reserve(key, tokens)

    def after(self, key: str, estimated: float, used: float | None, retry_after: float) -> None:
        if retry_after >= 0:
            self.policy.throttled(key, retry_after)
        if used is not None:
            self.policy.settle(key, estimated, used)

    def counts(self) -> dict[str, int]:
        return {"granted": self.policy.granted, "throttles": self.policy.throttles}


@ray.remote(num_cpus=0)
class NodeModels:
    """The bundled model servers of one node, started on first use, shared by its workers."""

    # Imported in each method: Ray ships an actor class by value, and the servers' registry
    # (a lock inside) must be this process's own, not a pickled copy.
    def api_base(self, model_string: str) -> str:
        from council.seats.local import LOCAL_SERVERS

        return LOCAL_SERVERS.api_base(model_string)

    def stop(self) -> None:
        from council.seats.local import LOCAL_SERVERS

        LOCAL_SERVERS.stop_all()


class ClusterGate:
    """A worker's gate: limited providers ask the cluster's ``SharedLimits``, others go."""

    def __init__(self, limiter: Any, limits: dict[str, ProviderLimit]) -> None:
        self.limiter = limiter
        self.limits = limits

    async def before(self, model: str, tokens: float) -> None:
        import asyncio

        key = limit_key(model, self.limits)
        if key is not None:
            start_at = await self.limiter.reserve.remote(key, tokens)
            if start_at > time.time():  # the nodes' clocks agree to NTP's few milliseconds
                await asyncio.sleep(start_at - time.time())

    def after(self, model: str, estimated: float, used: float | None, retry_after: float) -> None:
        key = limit_key(model, self.limits)
        if key is not None:
            self.limiter.after.remote(key, estimated, used, retry_after)


_node_models: list[Any] = []  # held: an actor no handle refers to is stopped by Ray


def node_models() -> Any:
    """This node's ``NodeModels`` actor, created by the first worker that needs it."""
    if not _node_models:
        node = ray.get_runtime_context().get_node_id()
        _node_models.append(
            NodeModels.options(  # type: ignore[attr-defined]
                name=f"council-models-{node}",
                namespace=NAMESPACE,
                get_if_exists=True,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote()
        )
    return _node_models[0]


def _serve_on_node(model_string: str) -> str:
    try:
        return str(ray.get(node_models().api_base.remote(model_string)))
    except ray.exceptions.RayActorError:  # stopped by an earlier experiment's close
        _node_models.clear()
        return str(ray.get(node_models().api_base.remote(model_string)))


def _on_worker(fn: Callable[[T], R], task: T, limiter: Any, limits: dict[str, Any]) -> R:
    # Set for each task: a worker process outlives one experiment and its limiter.
    LOCAL_SERVERS.served_elsewhere = _serve_on_node
    install_call_gate(ClusterGate(limiter, limits) if limiter is not None else None)
    if limiter is not None:
        warm_up()
    return fn(task)


def _result(ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        # The unit's own error (a missing model, a bad endpoint), as it would be in process.
        if isinstance(exc.cause, Exception):
            raise exc.cause from None
        raise


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        rate_limits: dict[str, ProviderLimit] | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self._started_here = not ray.is_initialized()
        if self._started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.limits = dict(rate_limits or {})
        self.limiter = SharedLimits.remote(self.limits) if self.limits else None  # type: ignore[attr-defined]
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(2, 2 * cpus)
        self._remote: Any = ray.remote(_on_worker)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        waiting = list(reversed(tasks))
        pending: list[Any] = []
        try:
            while waiting or pending:
                while waiting and len(pending) < self.max_in_flight:
                    task = waiting.pop()
                    pending.append(self._remote.remote(fn, task, self.limiter, self.limits))
                done, pending = ray.wait(pending, num_returns=1)
                yield _result(done[0])
        finally:
            # An interrupted driver leaves nothing running for nobody. Not forced: a killed
            # worker would take its node's model server actor (and the server) with it.
            for ref in pending:
                ray.cancel(ref)
            if pending:  # and returns once they have stopped, so nothing calls on after it
                ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S)

    def limiter_counts(self) -> dict[str, int]:
        if self.limiter is None:
            return {"granted": 0, "throttles": 0}
        return dict(ray.get(self.limiter.counts.remote()))

    def close(self) -> None:
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            name = f"council-models-{node['NodeID']}"
            try:
                actor = ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                continue  # no bundled model was served on that node
            ray.get(actor.stop.remote())
            ray.kill(actor)
        if self.limiter is not None:
            ray.kill(self.limiter)
        if self._started_here:
            ray.shutdown()
