"""The run's context, reachable anywhere in the run through a contextvar.

One `RunContext` per run. `current_context()` returns it from any hook, wrap, model or tool,
also inside a sync tool running in a worker thread (the thread gets a copy of the context).
`request_metadata_scope()` binds per-request metadata that every middleware can read with
`current_request_metadata()` (seed 004); outside any scope it is empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from onionskin.core.errors import OnionskinError
from onionskin.core.progress import ResumePoint, RunProgress
from onionskin.core.tenant import TenantContext
from onionskin.core.usage import Usage

if TYPE_CHECKING:
    from onionskin.core.chain import CompiledStack
    from onionskin.core.events import EventSink

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_ZERO = Decimal(0)
_CURRENT_RUN: ContextVar[RunContext | None] = ContextVar("onionskin_run", default=None)
_REQUEST_METADATA: ContextVar[Mapping[str, Any]] = ContextVar(
    "onionskin_request_metadata", default=_EMPTY
)


@dataclass(slots=True)
class AgentStats:
    """What one agent of a run consumed: tokens, cost, time and calls."""

    usage: Usage = field(default_factory=Usage)
    cost: Decimal = _ZERO
    duration_ms: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


class RunContext:
    """Everything a run knows about itself; seed 000's `MiddlewareContext`.

    A run owns its context: middleware read it and may write `state`, the rest is
    maintained by the runtime. `state` is shared and mutable: its keys fill `{var}`
    placeholders in agent instructions (seed 002).
    """

    __slots__ = (
        "_started",
        "agent_stats",
        "chains",
        "current_agent",
        "current_stats",
        "emit",
        "guard_state",
        "input_data",
        "last_cost",
        "last_duration_ms",
        "metadata",
        "pipeline_id",
        "progress",
        "resume",
        "run_id",
        "state",
        "tenant",
    )

    def __init__(
        self,
        *,
        run_id: str,
        pipeline_id: str,
        chains: CompiledStack,
        tenant: TenantContext | None = None,
        metadata: Mapping[str, Any] = _EMPTY,
        state: dict[str, Any] | None = None,
        input_data: Any = None,
        emit: EventSink | None = None,
    ) -> None:
        self.run_id = run_id
        self.pipeline_id = pipeline_id
        self.chains = chains
        self.tenant = tenant
        self.metadata = metadata
        """The request metadata bound when the run started (seed 004)."""
        self.state: dict[str, Any] = {} if state is None else state
        self.input_data = input_data
        """What the caller passed to `run()`: Any by design."""
        self.emit = emit
        self.current_agent: str | None = None
        self.current_stats: AgentStats | None = None
        """The running totals of the agent whose turn it is (None before the first)."""
        self.last_duration_ms = 0.0
        """How long the last agent's turn took (seed 000's after_agent reads it)."""
        self.last_cost = _ZERO
        """What the last agent's turn cost, in USD."""
        self.agent_stats: dict[str, AgentStats] = {}
        self.guard_state: dict[str, Any] = {}
        """Per-run state of guards (call counts, reservations), keyed by the guard's name.

        Kept apart from `state`, whose keys fill prompts and belong to the application."""
        self.progress = RunProgress()
        """Where the run is (kept current by the runtime; read by checkpointing)."""
        self.resume: ResumePoint | None = None
        """Set when the run continues from a checkpoint; the runtime consumes it."""
        self._started = time.perf_counter()

    @property
    def tenant_id(self) -> str | None:
        """The tenant's id, or None for a run without a tenant."""
        return None if self.tenant is None else self.tenant.tenant_id

    @property
    def user_id(self) -> str | None:
        """The user who started the run, when the tenant context names one."""
        return None if self.tenant is None else self.tenant.user_id

    @property
    def usage(self) -> Usage:
        """Tokens the run has used so far, all agents together."""
        total = Usage()
        for stats in self.agent_stats.values():
            total.add(stats.usage)
        return total

    @property
    def total_cost(self) -> Decimal:
        """What the run has cost so far, in USD, all agents together."""
        total = _ZERO
        for stats in self.agent_stats.values():
            if stats.cost:
                total += stats.cost
        return total

    @property
    def total_duration_ms(self) -> float:
        """Milliseconds since the run started."""
        return (time.perf_counter() - self._started) * 1000.0

    def enter_agent(self, agent: str) -> AgentStats:
        """Make `agent` the current agent; returns its running totals (created on first use)."""
        stats = self.agent_stats.get(agent)
        if stats is None:
            stats = self.agent_stats[agent] = AgentStats()
        self.current_agent = agent
        self.current_stats = stats
        return stats


MiddlewareContext = RunContext
"""Seed 000's name for the run context that hooks receive."""


def current_context() -> RunContext:
    """Return the context of the run in progress.

    Raises:
        OnionskinError: when called outside a run.
    """
    ctx = _CURRENT_RUN.get()
    if ctx is None:
        raise OnionskinError(
            "current_context() was called outside a run; call it from a hook, middleware, "
            "model or tool while Orchestrator.run() or execute() is running"
        )
    return ctx


# The contextvar's own `get`, bound once: the hot path skips a Python-level call.
current_context_or_none: Callable[[], RunContext | None] = _CURRENT_RUN.get
"""Return the context of the run in progress, or None outside a run."""


def bind_context(ctx: RunContext | None) -> Token[RunContext | None]:
    """Make `ctx` the current run's context; returns a token for `unbind_context`."""
    return _CURRENT_RUN.set(ctx)


def unbind_context(token: Token[RunContext | None]) -> None:
    """Restore the context that was current before `bind_context` returned `token`."""
    _CURRENT_RUN.reset(token)


def current_request_metadata() -> Mapping[str, Any]:
    """Return the merged request metadata of the request in flight (read-only; `{}` outside).

    Values are whatever the request carried (JSON values: Any).
    """
    return _REQUEST_METADATA.get()


@contextmanager
def request_metadata_scope(metadata: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Bind `metadata` for everything run inside the block, merged over any outer scope.

    Yields the merged, read-only mapping. Runs started inside the block carry it as
    `RunContext.metadata`, and `current_request_metadata()` returns it.
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"request metadata must be a mapping, got {type(metadata).__name__}")
    outer = _REQUEST_METADATA.get()
    merged = MappingProxyType({**outer, **metadata})
    token = _REQUEST_METADATA.set(merged)
    try:
        yield merged
    finally:
        _REQUEST_METADATA.reset(token)
