"""`RateLimiterMiddleware`: token buckets (GCRA) per tenant, user, tool, model or your key.

Every call takes its cost (1, or its tokens) from each bucket its limits name, in one atomic
step (tenant + user + model limits together, all or nothing): a refused call takes nothing. A
refused call waits via `clock.sleep` while the wait fits in `max_wait`, else it is refused
with `RateLimitExceededError` carrying `retry_after`. A limit in `unit="tokens"` weighs
model calls: it reserves the estimated prompt tokens plus `max_tokens` up front, then
charges or refunds the difference to `response.usage` afterwards; a call that failed or
was cancelled gets its whole reservation back (we cannot know what it used).

A tenant's config may set its own rate and burst for a bucket by name (`limits.rates`,
see `TenantConfigMiddleware`): a paying tenant gets more, a trial tenant less, on one stack.

Buckets are keyed tenant first (`tenant:acme:user:bob:all-calls`; `-` for a run without a
tenant or user) and live in a `RateLimitStore`: this process's memory by default, Redis
to share one limit between processes. When the store fails, the limiter fails closed
(`GuardStoreError`) unless `fail_open=True`. Written here, not taken from a library: see
`onionskin.stores.rate_limit`. Over 200 lines: the config and its checks belong with it.

Built by `GuardConfig` on one Redis with a budget, the limiter leaves its charges to the
budget layer, which takes them with its reservation in one round trip (`_admission.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias, TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import RunContext, current_context_or_none
from onionskin.core.errors import ConfigError, InvalidInputError, RateLimitExceededError, StoreError
from onionskin.middleware._admission import PENDING, Attempt, Handoff
from onionskin.middleware._config import require_bool, require_choice, require_int, require_positive
from onionskin.middleware._store_policy import StorePolicy
from onionskin.middleware._tenant_limits import TenantRate
from onionskin.middleware.tenant_config import tenant_limits
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.stores.rate_limit import (
    ADMITTED,
    Admission,
    Charge,
    MemoryRateLimitStore,
    RateLimitStore,
)

Per: TypeAlias = Literal["global", "tenant", "user", "tool", "model"]
KeyFunction: TypeAlias = Callable[[str, str], str | None]
"""`(kind, name) -> key`: kind is `"model"` or `"tool"`; None leaves the call unlimited."""
Unit: TypeAlias = Literal["calls", "tokens"]
Kinds: TypeAlias = Literal["all", "model", "tool"]
C = TypeVar("C")
R = TypeVar("R")

logger = logging.getLogger("onionskin.guards")
_PERS: tuple[Per, ...] = ("global", "tenant", "user", "tool", "model")
_UNGUARDED = Admission(allowed=True)  # the store failed open: nothing to reconcile
_CACHED_CHARGES = 1024
"""Call charges one bucket remembers (by tenant and name) before it starts again from none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """One limit: how fast, how bursty, per what, counting calls or tokens."""

    rate: float
    """Calls (or tokens) admitted per second, on average; `100 / 60` is 100 a minute."""
    burst: float | None = None
    """How many may go at once after a quiet spell; default `max(rate, 1)` for calls.

    Required for tokens: it must hold a whole call's reservation."""
    per: Per | KeyFunction = "tenant"
    """One bucket for all (`"global"`), per tenant, per user, per tool or model name (under
    the tenant), or per `key(kind, name)` (under the tenant; None: this call is unlimited)."""
    unit: Unit = "calls"
    """Count calls, or tokens of model calls (estimate reserved, then adjusted to usage)."""
    applies_to: Kinds | None = None
    """Which calls count; default: what `per` and `unit` imply, else model and tool calls."""
    name: str | None = None
    """Names the bucket (default `<applies_to>-<unit>`); two limits with one `per` need two."""

    def __post_init__(self) -> None:
        require_positive("RateLimit", "rate", self.rate)
        if self.burst is not None:
            require_positive("RateLimit", "burst", self.burst)
        if not callable(self.per):
            require_choice("RateLimit", "per", self.per, _PERS)
        require_choice("RateLimit", "unit", self.unit, ("calls", "tokens"))
        if self.unit == "tokens" and self.burst is None:
            raise ConfigError("RateLimit.burst is required with unit='tokens'")
        if self.unit == "calls" and self.burst is not None and self.burst < 1:
            raise ConfigError(f"RateLimit.burst must be >= 1 to admit a call, got {self.burst!r}")
        if self.unit == "tokens" and self.per == "tool":
            raise ConfigError("RateLimit.per='tool' cannot count tokens: tool calls spend none")
        if self.applies_to is not None:
            require_choice("RateLimit", "applies_to", self.applies_to, ("all", "model", "tool"))
            implied = self._implied()
            if implied != "all" and self.applies_to != implied:
                raise ConfigError(
                    f"RateLimit.applies_to={self.applies_to!r} contradicts per={self.per!r}, "
                    f"unit={self.unit!r}, which count {implied} calls only"
                )
        name: object = self.name
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"RateLimit.name must be a non-empty string, got {name!r}")

    def _implied(self) -> Kinds:
        if self.per == "tool" or self.per == "model":
            return self.per
        return "model" if self.unit == "tokens" else "all"

    @property
    def kinds(self) -> Kinds:
        """Which calls this limit counts."""
        return self.applies_to or self._implied()

    @property
    def capacity(self) -> float:
        """The bucket's size: `burst`, or its default."""
        return self.burst if self.burst is not None else max(self.rate, 1.0)

    @property
    def label(self) -> str:
        """The bucket's name within its scope."""
        return self.name or f"{self.kinds}-{self.unit}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    """The limits a `RateLimiterMiddleware` enforces, and how it waits and fails."""

    limits: tuple[RateLimit, ...]
    """Every limit a call must fit in, checked together (a list is accepted)."""
    max_wait: float = 0.0
    """Seconds a refused call may wait for its tokens; 0 refuses at once."""
    fail_open: bool = False
    """When the store fails: False refuses calls (`GuardStoreError`), True lets them through."""
    default_max_tokens: int = 4096
    """Output tokens reserved for a model call whose settings name no `max_tokens`."""

    def __post_init__(self) -> None:
        limits: object = self.limits
        if isinstance(limits, list):
            limits = tuple(limits)
            object.__setattr__(self, "limits", limits)  # frozen: normalise a list once
        if not isinstance(limits, tuple) or not all(isinstance(x, RateLimit) for x in limits):
            raise ConfigError(
                f"RateLimitConfig.limits must be a tuple of RateLimit, got {limits!r}"
            )
        if not limits:
            raise ConfigError("RateLimitConfig.limits must hold at least one RateLimit")
        require_positive("RateLimitConfig", "max_wait", self.max_wait, allow_zero=True)
        require_bool("RateLimitConfig", "fail_open", self.fail_open)
        require_int("RateLimitConfig", "default_max_tokens", self.default_max_tokens)
        buckets = [("key" if callable(x.per) else x.per, x.label) for x in self.limits]
        for bucket in buckets:
            if buckets.count(bucket) > 1:
                raise ConfigError(
                    f"RateLimitConfig.limits: two limits per {bucket[0]!r} share the bucket "
                    f"{bucket[1]!r}; give one of them a distinct name="
                )


def _as_config(value: object) -> RateLimitConfig:
    if isinstance(value, RateLimitConfig):
        return value
    if isinstance(value, RateLimit):
        return RateLimitConfig(limits=(value,))
    if isinstance(value, list | tuple) and all(isinstance(x, RateLimit) for x in value):
        return RateLimitConfig(limits=tuple(value))
    raise ConfigError(f"config must be a RateLimitConfig or RateLimit(s), got {value!r}")


class _Bucket:
    """One limit as every call meets it: what can be worked out once is, at construction."""

    __slots__ = ("_charges", "burst", "custom", "label", "per", "rate", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.per = limit.per
        self.custom = limit.per if callable(limit.per) else None
        self.label = limit.label
        self.rate = limit.rate
        self.burst = limit.capacity
        self.tokens = limit.unit == "tokens"
        # Call charges by (tenant, name, user or custom key): building the key string and
        # the Charge (which checks its fields) cost more than the rest of an admission.
        # Bounded, as tenants and names are many.
        self._charges: dict[tuple[str, str], Charge] = {}

    def charge(
        self,
        ctx: RunContext | None,
        kind: str,
        name: str,
        tokens: int,
        rates: Mapping[str, TenantRate],
    ) -> Charge | None:
        """What this call takes from its bucket; None leaves the call unlimited.

        `rates` are the tenant's own rates by bucket name (its config's `limits.rates`);
        they apply to every bucket under the tenant, never to a global one.
        """
        tenant = (ctx.tenant_id if ctx else None) or "-"
        rate, burst = self.rate, self.burst
        if rates and self.per != "global":
            own = rates.get(self.label)
            if own is not None:
                rate = own.rate
                burst = burst if own.burst is None else own.burst
        if self.custom is not None:
            custom: object = self.custom(kind, name)
            if custom is None:
                return None
            if not isinstance(custom, str) or not custom:
                raise ConfigError(f"RateLimit.per key function returned {custom!r}, not a key")
            part = custom
        elif self.per == "user":
            part = (ctx.user_id if ctx else None) or "-"
        else:
            part = name  # unused by the key for "global" and "tenant": one entry per name
        if self.tokens:
            return Charge(key=self._key(tenant, part), rate=rate, burst=burst, cost=tokens)
        charge = self._charges.get((tenant, part))
        if charge is None or charge.rate != rate or charge.burst != burst:
            # Rebuilt too when the tenant's configured rate changed since it was cached.
            if len(self._charges) >= _CACHED_CHARGES:
                self._charges.clear()
            charge = Charge(key=self._key(tenant, part), rate=rate, burst=burst, cost=1)
            self._charges[tenant, part] = charge
        return charge

    def _key(self, tenant: str, part: str) -> str:
        per, label = self.per, self.label
        if self.custom is not None:
            return f"tenant:{tenant}:key:{part}:{label}"
        if per == "global":
            return f"global:{label}"
        if per == "tenant":
            return f"tenant:{tenant}:{label}"
        return f"tenant:{tenant}:{per}:{part}:{label}"


class RateLimiterMiddleware:
    """Admits model and tool calls at the rates its limits allow, waiting or refusing.

    Args:
        config: A `RateLimitConfig`, or one or more `RateLimit` with the config's defaults.
        store: Where buckets live; default: this process's memory.
        clock: Where the limiter reads the time and waits (and the memory store with it).
    """

    def __init__(
        self,
        config: RateLimitConfig | RateLimit | Sequence[RateLimit],
        *,
        store: RateLimitStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = _as_config(config)
        self.clock = clock
        self.store: RateLimitStore = store if store is not None else MemoryRateLimitStore(clock)
        self._policy = StorePolicy("rate_limiter", fail_open=self.config.fail_open)
        self._defer_to: object | None = None
        """The budget layer that takes this limiter's charges with its own (`_admission.fuse`)."""
        limits = self.config.limits
        self._weighed = any(limit.unit == "tokens" for limit in limits)
        self._buckets: dict[str, tuple[_Bucket, ...]] = {
            kind: tuple(_Bucket(x) for x in limits if x.kinds in ("all", kind))
            for kind in ("model", "tool")
        }

    def _charges(
        self, kind: str, name: str, tokens: int = 0, reserved: list[Charge] | None = None
    ) -> list[Charge]:
        """This call's charges; those that reserve tokens also go to `reserved`."""
        ctx = current_context_or_none()
        rates = tenant_limits(ctx).rates
        charges: list[Charge] = []
        for bucket in self._buckets[kind]:
            charge = bucket.charge(ctx, kind, name, tokens, rates)
            if charge is not None:
                charges.append(charge)
                if bucket.tokens and reserved is not None:
                    reserved.append(charge)
        return charges

    def _admitted_at_once(self, charges: Sequence[Charge]) -> bool:
        # The memory store answers without a coroutine; a refusal (which took nothing) goes
        # on to `_admit`, whose loop asks again, waits or refuses: that path need not be fast.
        # The type exactly: a subclass may override `acquire`, and must be asked through it.
        store = self.store
        return type(store) is MemoryRateLimitStore and store.acquire_nowait(charges).allowed

    async def _admit(self, charges: Sequence[Charge], attempt: Attempt | None = None) -> Admission:
        """Take `charges` from the store, or through `attempt` (a joint admission), waiting."""
        if not charges:
            return ADMITTED
        started = self.clock.monotonic()
        while True:
            # Awaited here, not through `StorePolicy.run`: one coroutine less per call.
            try:
                if attempt is None:
                    admission = await self.store.acquire(charges)
                else:
                    admission = await attempt()
            except StoreError as error:
                return self._policy.failed(error, when_open=_UNGUARDED)
            self._policy.succeeded()
            if admission.allowed:
                return admission
            waited = self.clock.monotonic() - started
            if admission.retry_after > self.config.max_wait - waited:
                raise RateLimitExceededError(
                    admission.key_that_refused or "", admission.retry_after
                )
            await self.clock.sleep(admission.retry_after)

    async def _deferred(
        self,
        charges: list[Charge],
        reserved: list[Charge],
        estimate: int,
        next: Callable[[C], Awaitable[R]],
        call: C,
        used: Callable[[R], int],
    ) -> R:
        """Leave `charges` to the budget layer inside, then reconcile as `wrap_model_call`."""
        handoff = Handoff(self._defer_to, charges, self._admit)
        token = PENDING.set(handoff)
        try:
            result = await next(call)
        except BaseException:
            if reserved and handoff.taken is not None and handoff.taken is not _UNGUARDED:
                await asyncio.shield(self._reconcile(reserved, -estimate))
            raise
        finally:
            PENDING.reset(token)
        if handoff.taken is None:
            # The budget layer was never reached (a chain GuardConfig does not build): the
            # call ran all the same, so its charges are counted late rather than never.
            logger.warning(
                "rate_limiter: the budget layer meant to admit this call with it was not in "
                "the chain; its charges were counted after the call. Keep the two together, "
                "as GuardConfig builds them"
            )
            handoff.taken = ADMITTED
            await self._reconcile(charges, None)
        if reserved and handoff.taken is not _UNGUARDED:
            await self._reconcile(reserved, used(result) - estimate)
        return result

    async def _reconcile(self, charges: Sequence[Charge], delta: int | None) -> None:
        """Adjust `charges` by `delta` tokens each, or by their own costs when None."""
        if not charges or delta == 0:
            return
        try:
            if delta is not None:
                charges = [replace(charge, cost=delta) for charge in charges]
            await self.store.adjust(charges)
        except StoreError as error:
            # The call has ended: its result or its own error matters more than our books.
            logger.warning("rate_limiter: could not reconcile %s tokens (%s)", delta, error)

    def _estimate(self, request: ModelRequest) -> int:
        max_tokens: object = request.settings.get("max_tokens")
        if max_tokens is None:
            max_tokens = self.config.default_max_tokens
        if type(max_tokens) is not int or max_tokens < 1:
            problem = f"must be an int >= 1, got {max_tokens!r}"
            raise InvalidInputError(
                f"request setting max_tokens {problem}", errors=(("settings.max_tokens", problem),)
            )
        return estimate_tokens(request.messages) + max_tokens

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Admit one model call; with token limits, reserve its estimate and reconcile after."""
        estimate = self._estimate(request) if self._weighed else 0
        reserved: list[Charge] = []
        charges = self._charges("model", request.model.name, estimate, reserved)
        if charges and self._defer_to is not None:
            return await self._deferred(charges, reserved, estimate, next, request, _total_tokens)
        admission = ADMITTED
        if charges and not self._admitted_at_once(charges):
            admission = await self._admit(charges)
        if not reserved or admission is _UNGUARDED:
            return await next(request)
        try:
            response = await next(request)
        except BaseException:
            # Shielded: a second cancellation must not lose the refund half-way.
            await asyncio.shield(self._reconcile(reserved, -estimate))
            raise
        await self._reconcile(reserved, response.usage.total_tokens - estimate)
        return response

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Admit one tool call."""
        charges = self._charges("tool", call.tool_name)
        if charges and self._defer_to is not None:
            return await self._deferred(charges, [], 0, next, call, _no_tokens)
        if charges and not self._admitted_at_once(charges):
            await self._admit(charges)
        return await next(call)


def _total_tokens(response: ModelResponse) -> int:
    return response.usage.total_tokens


def _no_tokens(result: ToolResult) -> int:
    return 0  # never asked: a tool call reserves no tokens
