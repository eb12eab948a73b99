"""`BudgetMiddleware`: what model and tool calls may cost, per call, run, session and tenant.

Each call reserves the most it may cost before it runs (a model call: its prompt plus a
full `max_tokens` answer, priced by the model exactly like the bill), atomically on every
budget it counts against; afterwards the reservation is settled to the actual cost, or
released when the call failed, timed out or was cancelled (DEPENDENCIES lessons 1-5).
Tenant budgets run per UTC calendar period, named in the store key (no reset job). A call
that would overdraw a budget raises `BudgetExceededError`, or is sent to a cheaper model, or
goes through if an approval callback says so. Alerts fire once per line, threshold and
period, across every worker that shares the store.

Over 400 lines: the config (fourteen checked fields) and the guard share their types and
are read together; the config could move to a `_budget_config.py` of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeVar, assert_never, get_args

from onionskin.core.calls import Model, ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import RunContext, current_context_or_none
from onionskin.core.errors import BudgetExceededError, ConfigError, StoreError
from onionskin.core.ids import new_id
from onionskin.middleware._config import (
    require_bool,
    require_choice,
    require_int,
    require_positive,
)
from onionskin.middleware._store_policy import StorePolicy
from onionskin.pricing import estimate_cost, from_micros, limit_micros, to_micros
from onionskin.stores.budget import BudgetLine, BudgetStore, MemoryBudgetStore, Refusal

Period = Literal["day", "month", "total"]
OnExceeded = Literal["raise", "fallback", "approve"]
C = TypeVar("C")
R = TypeVar("R")

logger = logging.getLogger("onionskin.guards")
_DAY = 86_400.0
# How long a line's state outlives its last write: past the end of its period, or of any
# plausible run or session; a tenant's "total" is kept for good.
_KEEP: Mapping[str, float | None] = {
    "run": 7 * _DAY,
    "session": 30 * _DAY,
    "day": 2 * _DAY,
    "month": 62 * _DAY,
    "total": None,
}
_OPEN = Refusal(key="", limit_micros=0, spent_micros=0, held_micros=0)  # store down, fail-open


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetAlert:
    """A budget crossed an alert threshold; sent once per line, threshold and period."""

    scope: str
    """`"run"`, `"session"` or `"tenant"`."""
    key: str
    """The budget line's store key."""
    tenant_id: str | None
    threshold: Decimal
    """The share of the limit that was reached (`Decimal("0.8")`)."""
    limit: Decimal
    spent: Decimal
    """USD settled on the line when the threshold was crossed."""


AlertCallback = Callable[[BudgetAlert], Awaitable[None] | None]
ApproveCallback = Callable[[BudgetExceededError], Awaitable[bool] | bool]


def _require_money(field: str, value: object) -> None:
    if value is None:
        return
    exact = isinstance(value, Decimal | int) and not isinstance(value, bool)
    if not exact or not Decimal(value).is_finite() or value < 0:  # type: ignore[arg-type,operator]
        raise ConfigError(
            f"BudgetConfig.{field} must be a Decimal amount of USD >= 0 (never a float, so "
            f"that money stays exact), or None; got {value!r}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetConfig:
    """Which budgets apply, how a call is estimated, and what happens when one would be spent."""

    per_call: Decimal | None = None
    """The most one call may cost, in USD (its estimate is checked)."""
    per_run: Decimal | None = None
    """The most one run may cost, in USD."""
    per_session: Decimal | None = None
    """The most one session may cost (`metadata["session_id"]` or the tool call's)."""
    per_tenant: Decimal | None = None
    """The most one tenant may spend per `tenant_period`, in USD."""
    tenant_period: Period = "month"
    """The tenant budget's UTC calendar period: `"day"`, `"month"` or `"total"` (no reset)."""
    default_max_tokens: int = 4096
    """The output bound of the estimate when a request sets no `max_tokens`."""
    tool_costs: Mapping[str, Decimal] = field(default_factory=dict, hash=False)
    """USD per call of a tool, by tool name; tools not listed are free and not reserved."""
    alert_thresholds: tuple[float | Decimal, ...] = (0.8,)
    """Shares of a limit (0 < share <= 1) at which `on_alert` fires, once each."""
    on_alert: AlertCallback | None = None
    """Called (sync or async) with a `BudgetAlert`; None logs a warning instead."""
    on_exceeded: OnExceeded = "raise"
    """`"raise"` BudgetExceededError, `"fallback"` to `fallback_model`, or ask `approve`."""
    fallback_model: Model | None = None
    """The cheaper model a refused model call is sent to, with `on_exceeded="fallback"`."""
    approve: ApproveCallback | None = None
    """Gets the refusal (sync or async); True lets the call through (`on_exceeded="approve"`)."""
    reservation_ttl: float = 600.0
    """Seconds a reservation holds budget if never settled; longer than any call takes."""
    fail_open: bool = False
    """Let calls through unguarded while the store is down (logged once), instead of failing."""

    def __post_init__(self) -> None:
        for name in ("per_call", "per_run", "per_session", "per_tenant"):
            _require_money(name, getattr(self, name))
        require_choice("BudgetConfig", "tenant_period", self.tenant_period, get_args(Period))
        require_int("BudgetConfig", "default_max_tokens", self.default_max_tokens)
        self._check_tool_costs()
        self._check_thresholds()
        require_choice("BudgetConfig", "on_exceeded", self.on_exceeded, get_args(OnExceeded))
        self._check_callbacks()
        require_positive("BudgetConfig", "reservation_ttl", self.reservation_ttl)
        require_bool("BudgetConfig", "fail_open", self.fail_open)

    def _check_tool_costs(self) -> None:
        costs: object = self.tool_costs
        if not isinstance(costs, Mapping) or not all(isinstance(k, str) for k in costs):
            raise ConfigError(f"BudgetConfig.tool_costs must map tool names to USD, got {costs!r}")
        for name, cost in costs.items():
            _require_money(f"tool_costs[{name!r}]", cost)
        # A private copy: the caller's dict may change, the frozen config must not.
        object.__setattr__(self, "tool_costs", MappingProxyType(dict(costs)))

    def _check_thresholds(self) -> None:
        shares: object = self.alert_thresholds
        if not isinstance(shares, tuple) or not all(
            isinstance(s, int | float | Decimal) and not isinstance(s, bool) and 0 < s <= 1
            for s in shares
        ):
            raise ConfigError(
                "BudgetConfig.alert_thresholds must be a tuple of shares of the limit, each "
                f"0 < share <= 1; got {shares!r}"
            )

    def _check_callbacks(self) -> None:
        for name in ("on_alert", "approve"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"BudgetConfig.{name} must be callable, got {value!r}")
        model = self.fallback_model
        if model is not None and not all(
            callable(getattr(model, m, None)) for m in ("request", "stream", "cost")
        ):
            raise ConfigError(f"BudgetConfig.fallback_model must be a Model, got {model!r}")
        if self.on_exceeded == "fallback" and model is None:
            raise ConfigError('BudgetConfig.fallback_model is needed with on_exceeded="fallback"')
        if self.on_exceeded == "approve" and self.approve is None:
            raise ConfigError('BudgetConfig.approve is needed with on_exceeded="approve"')


def period_label(period: Period, now: float) -> str:
    """The UTC calendar period that Unix time `now` falls in: `day:2026-11-05`, `month:2026-11`."""
    if period == "total":
        return "total"
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return f"day:{moment:%Y-%m-%d}"
    if period == "month":
        return f"month:{moment:%Y-%m}"
    assert_never(period)  # pragma: no cover - the config admits no other period


@dataclass(frozen=True, slots=True)
class _Scope:
    """Who one call counts against: its tenant and its budget lines, with their scope names."""

    tenant_id: str | None
    lines: tuple[BudgetLine, ...]
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Hold:
    """One admitted call; no `reservation_id` when nothing was reserved (fail-open, no lines)."""

    scope: _Scope
    reservation_id: str | None


class BudgetMiddleware:
    """Refuses, reroutes or escalates model and tool calls that would overdraw a budget."""

    name = "budget"

    def __init__(
        self,
        config: BudgetConfig | None = None,
        *,
        store: BudgetStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if config is not None and not isinstance(config, BudgetConfig):
            raise ConfigError(f"config must be a BudgetConfig, got {config!r}")
        if store is not None and not isinstance(store, BudgetStore):
            raise ConfigError(f"store must be a BudgetStore, got {store!r}")
        self.config = config = config or BudgetConfig()
        self.clock = clock
        self.store: BudgetStore = store if store is not None else MemoryBudgetStore(clock=clock)
        self._policy = StorePolicy(self.name, fail_open=config.fail_open)
        self._limits = {
            scope: None if amount is None else limit_micros(amount)
            for scope, amount in (
                ("call", config.per_call),
                ("run", config.per_run),
                ("session", config.per_session),
                ("tenant", config.per_tenant),
            )
        }
        self._thresholds = tuple(Decimal(str(share)) for share in config.alert_thresholds)

    def tenant_key(self, tenant_id: str | None) -> str:
        """The store key of `tenant_id`'s budget in the current period."""
        label = period_label(self.config.tenant_period, self.clock.time())
        return f"{tenant_id or '-'}:tenant:{label}"

    def run_key(self, run_id: str, *, tenant_id: str | None = None) -> str:
        """The store key of a run's budget."""
        return f"{tenant_id or '-'}:run:{run_id}"

    def session_key(self, session_id: str, *, tenant_id: str | None = None) -> str:
        """The store key of a session's budget."""
        return f"{tenant_id or '-'}:session:{session_id}"

    async def spent(self, key: str) -> Decimal:
        """USD settled on the budget line `key` (see `tenant_key`, `run_key`, `session_key`)."""
        return from_micros(await self.store.spent(key))

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Reserve the request's most expensive answer, call the model, settle to its usage."""
        ctx = current_context_or_none()
        scope = self._scope(ctx, None)
        if scope is None:
            return await next(request)
        request, hold = await self._admit_model(request, scope)
        model = request.model
        return await self._run(hold, next, request, lambda response: model.cost(response.usage))

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Reserve the tool's declared cost, call it, settle (or release if it could not run)."""
        cost = self.config.tool_costs.get(call.tool_name)
        scope = None if cost is None else self._scope(current_context_or_none(), call)
        if cost is None or scope is None:
            return await next(call)
        outcome = await self._reserve(scope, cost)
        hold = outcome if isinstance(outcome, _Hold) else await self._refused(scope, outcome, cost)
        return await self._run(hold, next, call, lambda r: None if r.status == "error" else cost)

    def _scope(self, ctx: RunContext | None, call: ToolCall | None) -> _Scope | None:
        limits = self._limits
        tenant = None if ctx is None else ctx.tenant_id
        named: list[tuple[str, str, float | None]] = []
        if limits["run"] is not None and ctx is not None:
            named.append(("run", self.run_key(ctx.run_id, tenant_id=tenant), _KEEP["run"]))
        session = self._session_id(ctx, call) if limits["session"] is not None else None
        if session is not None:
            key = self.session_key(session, tenant_id=tenant)
            named.append(("session", key, _KEEP["session"]))
        if limits["tenant"] is not None:
            period = self.config.tenant_period
            named.append(("tenant", self.tenant_key(tenant), _KEEP[period]))
        if not named and limits["call"] is None:
            return None
        lines = tuple(BudgetLine(key, limits[name], keep) for name, key, keep in named)
        return _Scope(tenant, lines, tuple(name for name, _, _ in named))

    @staticmethod
    def _session_id(ctx: RunContext | None, call: ToolCall | None) -> str | None:
        session = None if ctx is None else ctx.metadata.get("session_id")
        if session is not None:
            return str(session)
        if call is None or not call.session_id:
            return None
        # Inside a run the runtime fills a tool call's session_id with the run id: that is
        # the run's budget, not a session's.
        return None if ctx is not None and call.session_id == ctx.run_id else call.session_id

    async def _admit_model(
        self, request: ModelRequest, scope: _Scope
    ) -> tuple[ModelRequest, _Hold]:
        estimate = self._estimate(request)
        outcome = await self._reserve(scope, estimate)
        if isinstance(outcome, _Hold):
            return request, outcome
        fallback = self.config.fallback_model
        if self.config.on_exceeded != "fallback" or fallback is None or request.model is fallback:
            return request, await self._refused(scope, outcome, estimate)
        logger.info("budget: %s; falling back to model %r", outcome, fallback.name)
        request = replace(request, model=fallback)
        outcome = await self._reserve(scope, self._estimate(request))
        if isinstance(outcome, _Hold):
            return request, outcome
        raise outcome

    def _estimate(self, request: ModelRequest) -> Decimal:
        return estimate_cost(request, default_max_tokens=self.config.default_max_tokens)

    async def _reserve(
        self, scope: _Scope, amount: Decimal, *, approved: bool = False
    ) -> _Hold | BudgetExceededError:
        micros = to_micros(amount)
        per_call = self._limits["call"]
        if not approved and per_call is not None and micros > per_call:
            return BudgetExceededError(
                scope.tenant_id, scope="call", limit=from_micros(per_call), requested=amount
            )
        if not scope.lines:
            return _Hold(scope, None)
        lines = scope.lines
        if approved:  # an approved call goes through, and its cost is still counted
            lines = tuple(replace(line, limit_micros=None) for line in lines)
        rid = new_id()
        refusal = await self._policy.run(self._hold(rid, lines, micros), when_open=_OPEN)
        if refusal is None:
            return _Hold(scope, rid)
        if refusal is _OPEN:
            return _Hold(scope, None)
        return BudgetExceededError(
            scope.tenant_id,
            scope=scope.names[[line.key for line in lines].index(refusal.key)],
            key=refusal.key,
            limit=from_micros(refusal.limit_micros),
            spent=from_micros(refusal.spent_micros + refusal.held_micros),
            requested=amount,
        )

    async def _hold(self, rid: str, lines: tuple[BudgetLine, ...], micros: int) -> Refusal | None:
        reserving = asyncio.ensure_future(
            self.store.reserve(rid, lines, micros, self.config.reservation_ttl)
        )
        try:
            await asyncio.wait((reserving,))  # like shield: a cancelled wait leaves it running
        except asyncio.CancelledError:
            # Cancelled while the store was answering: the hold may still land. Wait for
            # it, then drop it, so that a cancelled admission holds nothing.
            with contextlib.suppress(Exception):
                await reserving
            with contextlib.suppress(StoreError):
                await self.store.release(rid)
            raise
        return reserving.result()

    async def _refused(self, scope: _Scope, error: BudgetExceededError, amount: Decimal) -> _Hold:
        """Ask `approve`, if configured: an approved call is admitted, anything else raises."""
        approve = self.config.approve
        if self.config.on_exceeded != "approve" or approve is None:
            raise error
        verdict = approve(error)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is not True:
            raise error
        logger.info("budget: %s; approved, the call goes through", error)
        outcome = await self._reserve(scope, amount, approved=True)
        if isinstance(outcome, BudgetExceededError):  # pragma: no cover - limits were lifted
            raise outcome
        return outcome

    async def _run(
        self,
        hold: _Hold,
        next: Callable[[C], Awaitable[R]],
        call: C,
        price: Callable[[R], Decimal | None],
    ) -> R:
        """Call `next`, then settle the hold to `price(result)` (None: release it).

        Every other exit releases the hold: an error, a timeout, a cancellation.
        """
        try:
            result = await next(call)
            actual = price(result)
            micros = None if actual is None else to_micros(actual)
        except BaseException:
            await self._end(hold, None)
            raise
        await self._end(hold, micros)
        return result

    async def _end(self, hold: _Hold, micros: int | None) -> None:
        rid = hold.reservation_id
        if rid is None:
            return
        # Shielded: a second cancellation must not stop the reservation from ending.
        try:
            if micros is None:
                await asyncio.shield(self.store.release(rid))
                return
            totals = await asyncio.shield(self.store.settle(rid, micros))
        except StoreError as error:
            lapse = self.config.reservation_ttl
            logger.warning(
                "budget: reservation %s not ended (%s); lapses in %g s", rid, error, lapse
            )
            return
        if totals is None:
            cost = from_micros(micros)
            logger.warning("budget: reservation %s had lapsed; its $%s went uncounted", rid, cost)
            return
        await self._alerts(hold.scope, totals)

    async def _alerts(self, scope: _Scope, totals: Mapping[str, int]) -> None:
        for name, line in zip(scope.names, scope.lines, strict=True):
            limit, spent = line.limit_micros, totals.get(line.key)
            if not limit or spent is None:
                continue
            for share in self._thresholds:
                if spent >= share * limit and await self._claim(line.key, str(share)):
                    alert = BudgetAlert(
                        scope=name,
                        key=line.key,
                        tenant_id=scope.tenant_id,
                        threshold=share,
                        limit=from_micros(limit),
                        spent=from_micros(spent),
                    )
                    await self._fire(alert)

    async def _claim(self, key: str, share: str) -> bool:
        try:
            return await self.store.claim_alert(key, share)
        except StoreError as error:
            logger.warning("budget: alert %s of %s not claimed (%s)", share, key, error)
            return False

    async def _fire(self, alert: BudgetAlert) -> None:
        callback = self.config.on_alert
        if callback is None:
            message = "budget: %s budget %s reached %s of its $%s limit ($%s spent)"
            a = alert
            logger.warning(message, a.scope, a.key, a.threshold, a.limit, a.spent)
            return
        try:
            outcome = callback(alert)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # The call already ran and was paid for: a failing alert hook must not lose it.
            logger.exception("budget: the on_alert callback failed for %s", alert.key)
