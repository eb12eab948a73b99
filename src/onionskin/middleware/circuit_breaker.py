"""`CircuitBreakerMiddleware`: stop calling what keeps failing, then probe it (seed 001).

CLOSED counts consecutive failures; at `failure_threshold` the circuit turns OPEN and every
call is refused at once with `CircuitOpenError` carrying `retry_after`. After
`recovery_timeout` it turns HALF_OPEN and lets `half_open_max_calls` probes through: a
success closes it, a failure opens it again. One circuit per model and per tool (and per
tenant with `per="tenant_target"`). State lives in a `CircuitStore`: this process's memory
by default, Redis (`RedisCircuitStore`) for one circuit shared by many processes. When the
store fails the breaker fails closed (`GuardStoreError`) unless `fail_open=True`; a failure
to record an outcome after the call is logged, never raised over the call's own result.

Written here, not taken from a library: no maintained breaker is async with shared state
(pybreaker is Tornado-only when async, aiobreaker is unmaintained).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import (
    BudgetExceededError,
    CallLimitExceededError,
    CircuitOpenError,
    ConfigError,
    GuardStoreError,
    InvalidInputError,
    RateLimitExceededError,
    StoreError,
)
from onionskin.middleware._config import (
    require_bool,
    require_choice,
    require_exceptions,
    require_int,
    require_positive,
)
from onionskin.middleware._store_policy import StorePolicy
from onionskin.stores.circuit import (
    CircuitAdmission,
    CircuitPolicy,
    CircuitStore,
    MemoryCircuitStore,
    Outcome,
    State,
)

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger("onionskin.guards")
_UNGUARDED = CircuitAdmission(allowed=True)  # the store failed open: nothing to record


REFUSALS: tuple[type[BaseException], ...] = (
    RateLimitExceededError,
    BudgetExceededError,
    CallLimitExceededError,
    InvalidInputError,
    CircuitOpenError,
    GuardStoreError,
)
"""Errors by which a guard refuses a call before it reaches the callee."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerConfig:
    """When a circuit opens, for how long, and which errors count."""

    failure_threshold: int = 5
    """Consecutive failures that open the circuit."""
    recovery_timeout: float = 30.0
    """Seconds an open circuit refuses calls before it lets probes through."""
    half_open_max_calls: int = 1
    """Probes admitted at once while half open."""
    count: tuple[type[BaseException], ...] = (Exception,)
    """Exceptions that count as failures."""
    ignore: tuple[type[BaseException], ...] = REFUSALS
    """Exceptions that never count, even when they match `count`. By default the refusals
    of the other guards: a call they stopped never reached the callee, so a rate-limited
    burst must not open the circuit. A timeout does count: the callee was too slow."""
    per: Literal["target", "tenant_target"] = "target"
    """One circuit per model/tool name, or one per tenant and name."""
    fail_open: bool = False
    """When the store fails: False refuses calls (`GuardStoreError`), True lets them through."""

    def __post_init__(self) -> None:
        owner = "CircuitBreakerConfig"
        require_int(owner, "failure_threshold", self.failure_threshold)
        require_positive(owner, "recovery_timeout", self.recovery_timeout)
        require_int(owner, "half_open_max_calls", self.half_open_max_calls)
        require_exceptions(owner, "count", self.count)
        require_exceptions(owner, "ignore", self.ignore)
        require_choice(owner, "per", self.per, ("target", "tenant_target"))
        require_bool(owner, "fail_open", self.fail_open)


class CircuitBreakerMiddleware:
    """Refuses calls to a model or tool that keeps failing, until it has had time to recover.

    Args:
        config: When circuits open and for how long; default `CircuitBreakerConfig()`.
        clock: Where the memory store reads the time.
        store: Where circuits live; default: this process's memory.
    """

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: CircuitStore | None = None,
    ) -> None:
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise ConfigError(f"config must be a CircuitBreakerConfig, got {config!r}")
        self.config = config or CircuitBreakerConfig()
        self.clock = clock
        self.store: CircuitStore = store if store is not None else MemoryCircuitStore(clock)
        self._policy = StorePolicy("circuit_breaker", fail_open=self.config.fail_open)
        self._settings = CircuitPolicy(
            failure_threshold=self.config.failure_threshold,
            recovery_timeout=self.config.recovery_timeout,
            half_open_max_calls=self.config.half_open_max_calls,
        )
        self._per_tenant = self.config.per == "tenant_target"

    async def state(self, key: str) -> State:
        """The state of circuit `key` (`"model:gpt-4o"`, `"tool:lookup"`, ...) right now.

        Raises:
            StoreError: when the store cannot be read.
        """
        return await self.store.state(key)

    def _key(self, kind: str, name: str) -> str:
        if not self._per_tenant:
            return f"{kind}:{name}"
        ctx = current_context_or_none()
        tenant = ctx.tenant_id if ctx is not None else None
        return f"{tenant or '-'}:{kind}:{name}"

    def _outcome(self, error: BaseException | None) -> Outcome:
        if error is None:
            return "success"
        config = self.config
        if not isinstance(error, config.count) or isinstance(error, config.ignore):
            return "ignored"  # not a failure of the callee (a cancellation, a refused input ...)
        return "failure"

    async def _record(
        self, key: str, admission: CircuitAdmission, error: BaseException | None
    ) -> None:
        outcome = self._outcome(error)
        try:
            await self.store.record(key, self._settings, outcome, probe=admission.probe)
        except StoreError as store_error:
            # The call has ended: its result or its own error matters more than the count.
            logger.warning("circuit_breaker: could not record a %s (%s)", outcome, store_error)

    async def _admit(self, key: str) -> CircuitAdmission:
        try:
            admission = await self.store.admit(key, self._settings)
        except StoreError as error:
            return self._policy.failed(error, when_open=_UNGUARDED)
        self._policy.succeeded()
        return admission

    async def _guard(self, key: str, next: Callable[[T], Awaitable[R]], call: T) -> R:
        # The memory store answers without awaiting: an admitted call then pays no coroutine
        # to the store. Other stores, and every failure, take the general path. The type
        # exactly: a subclass may override `admit` or `record`, and must be asked through them.
        store = self.store
        memory = store if type(store) is MemoryCircuitStore else None
        if memory is not None:
            admission = memory.admit_nowait(key, self._settings)
        else:
            admission = await self._admit(key)
        if not admission.allowed:
            raise CircuitOpenError(key, admission.retry_after)
        if admission is _UNGUARDED:
            return await next(call)
        try:
            result = await next(call)
        except BaseException as error:
            # Shielded: a second cancellation must not lose a probe's slot half-way.
            await asyncio.shield(self._record(key, admission, error))
            raise
        if memory is not None:
            memory.record_nowait(key, self._settings, "success", probe=admission.probe)
        else:
            # Written even when the circuit was healthy at admission: another call may have
            # failed meanwhile, and this success must reset that count. Skipping it would
            # open circuits on sparse failures under concurrency (with 50 calls in flight
            # and 5% failing, 21 of 40 simulated runs opened at threshold 5, against 0).
            await self._record(key, admission, None)
        return result

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Guard one model call."""
        return await self._guard(self._key("model", request.model.name), next, request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Guard one tool call."""
        return await self._guard(self._key("tool", call.tool_name), next, call)
