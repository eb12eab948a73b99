"""`BudgetMiddleware`: what model and tool calls may cost, per call, run, session and tenant.

Each call reserves the most it may cost before it runs (a model call: its prompt plus a
full `max_tokens` answer, priced by the model exactly like the bill), atomically on every
budget it counts against; afterwards the reservation is settled to the actual cost, or
released when the call failed, timed out or was cancelled (DEPENDENCIES lessons 1-5).
Tenant budgets run per UTC calendar period, named in the store key (no reset job). A call
that would overdraw a budget raises `BudgetExceededError`, or is sent to a cheaper model, or
goes through if an approval callback says so. Alerts fire once per line, threshold and
period, across every worker that shares the store.

Every admitted call pays for the guard (issue: the whole guard stack on memory stores adds
at most 25 µs), so what does not change between calls is worked out once: tool prices and
alert thresholds in micro-dollars at construction, the tenant's period and budget line once
per period. On the built-in memory store, which never waits, a reservation needs no task
and no shield to be seen through; stores that wait (Redis) keep both. Built by `GuardConfig`
on one Redis with a rate limiter, it takes the limiter's charges with its reservation in one
round trip (`_admission.py`).

Over 400 lines: admission, the three ways a refusal ends, settling and alerts are one cycle,
read together, and the joint admission hooks into each step of it; the config and its checks
live in `_budget_config.py`, the handoff from the limiter in `_admission.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import RunContext, current_context_or_none
from onionskin.core.errors import BudgetExceededError, ConfigError, GuardStoreError, StoreError
from onionskin.core.ids import new_id
from onionskin.core.partial import partial_usage
from onionskin.middleware._admission import AdmissionStore, pending_for
from onionskin.middleware._budget_config import KEEP_FOR, PeriodLabels, alert_marks, send_alert
from onionskin.middleware._budget_config import AlertCallback as AlertCallback
from onionskin.middleware._budget_config import ApproveCallback as ApproveCallback
from onionskin.middleware._budget_config import BudgetAlert as BudgetAlert
from onionskin.middleware._budget_config import BudgetConfig as BudgetConfig
from onionskin.middleware._budget_config import OnExceeded as OnExceeded
from onionskin.middleware._budget_config import Period as Period
from onionskin.middleware._budget_config import period_label as period_label
from onionskin.middleware._store_policy import StorePolicy
from onionskin.pricing import estimate_cost, from_micros, limit_micros, to_micros
from onionskin.stores.budget import BudgetLine, BudgetStore, MemoryBudgetStore, Refusal

C = TypeVar("C")
R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("onionskin.guards")
_TENANTS_CACHED = 4096
"""Tenants whose budget line of the current period is kept ready; more start the cache anew."""

_Admission = str | None | BudgetExceededError
"""A reservation's id, None when admitted with nothing held (no lines, fail-open), or why not."""


@dataclass(frozen=True, slots=True)
class _Scope:
    """Who one call counts against: its tenant and its budget lines, with their scope names."""

    tenant_id: str | None
    lines: tuple[BudgetLine, ...]
    names: tuple[str, ...]


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
        # Exactly the built-in memory store: its operations never wait, so nothing can
        # interrupt one half-way. A subclass may override them with ones that do.
        self._memory = self.store if type(self.store) is MemoryBudgetStore else None
        self._joint: AdmissionStore | None = None
        """Where the limiter's charges are taken with a reservation (`_admission.fuse`)."""
        self._limits = limits = {
            scope: None if amount is None else limit_micros(amount)
            for scope, amount in (
                ("call", config.per_call),
                ("run", config.per_run),
                ("session", config.per_session),
                ("tenant", config.per_tenant),
            )
        }
        # Each tool's price with its micro-dollars: one look-up per call, no conversion.
        self._tool_prices = {name: (usd, to_micros(usd)) for name, usd in config.tool_costs.items()}
        self._marks = {scope: alert_marks(config, limit) for scope, limit in limits.items()}
        self._lowest = {
            scope: min((m for _, m in ms), default=None) for scope, ms in self._marks.items()
        }
        self._periods = PeriodLabels(config.tenant_period)
        only = limits["tenant"] is not None and limits["run"] is None and limits["session"] is None
        self._tenant_only = only
        self._tenant_scopes: tuple[str, dict[str | None, _Scope]] = ("", {})

    def tenant_key(self, tenant_id: str | None) -> str:
        """The store key of `tenant_id`'s budget in the current period."""
        return f"{tenant_id or '-'}:tenant:{self._periods.label(self.clock.time())}"

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
        scope = self._scope(current_context_or_none(), None)
        if scope is None:
            if self._joint is not None:
                await self._take_charges()
            return await next(request)
        request, rid = await self._admit_model(request, scope)
        model = request.model

        def partial(error: BaseException) -> int | None:
            # A stream cut off after it began is billed what it used (lesson 4).
            usage = partial_usage(error)
            return None if usage is None else to_micros(model.cost(usage))

        return await self._run(
            scope,
            rid,
            next,
            request,
            lambda response: to_micros(model.cost(response.usage)),
            partial,
        )

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Reserve the tool's declared cost, call it, settle (or release if it could not run)."""
        price = self._tool_prices.get(call.tool_name)
        scope = None if price is None else self._scope(current_context_or_none(), call)
        if price is None or scope is None:
            if self._joint is not None:
                await self._take_charges()
            return await next(call)
        cost, micros = price
        rid = await self._reserve(scope, cost, micros)
        if isinstance(rid, BudgetExceededError):
            rid = await self._refused(scope, rid, cost, micros)
        # `_run`, written out: one coroutine less for every budgeted tool call.
        try:
            if self._joint is not None:
                await self._take_charges()
            result = await next(call)
        except BaseException:
            await self._end(scope, rid, None)
            raise
        await self._end(scope, rid, None if result.status == "error" else micros)
        return result

    def _scope(self, ctx: RunContext | None, call: ToolCall | None) -> _Scope | None:
        tenant = None if ctx is None else ctx.tenant_id
        if self._tenant_only:
            return self._tenant_scope(tenant)
        limits = self._limits
        named: list[tuple[str, BudgetLine]] = []
        if limits["run"] is not None and ctx is not None:
            key = self.run_key(ctx.run_id, tenant_id=tenant)
            named.append(("run", BudgetLine(key, limits["run"], KEEP_FOR["run"])))
        session = self._session_id(ctx, call) if limits["session"] is not None else None
        if session is not None:
            key = self.session_key(session, tenant_id=tenant)
            named.append(("session", BudgetLine(key, limits["session"], KEEP_FOR["session"])))
        if limits["tenant"] is not None:
            named.append(("tenant", self._tenant_scope(tenant).lines[0]))
        if not named and limits["call"] is None:
            return None
        return _Scope(tenant, tuple(line for _, line in named), tuple(name for name, _ in named))

    def _tenant_scope(self, tenant: str | None) -> _Scope:
        """The scope of a call counting against its tenant's budget alone, made once a period."""
        label = self._periods.label(self.clock.time())
        current, scopes = self._tenant_scopes
        if current != label:  # a new period: every tenant's key changes
            scopes = {}
            self._tenant_scopes = (label, scopes)
        scope = scopes.get(tenant)
        if scope is None:
            if len(scopes) >= _TENANTS_CACHED:
                scopes.clear()
            key = f"{tenant or '-'}:tenant:{label}"
            line = BudgetLine(key, self._limits["tenant"], KEEP_FOR[self.config.tenant_period])
            scope = scopes[tenant] = _Scope(tenant, (line,), ("tenant",))
        return scope

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
    ) -> tuple[ModelRequest, str | None]:
        estimate = self._estimate(request)
        micros = to_micros(estimate)
        outcome = await self._reserve(scope, estimate, micros)
        if not isinstance(outcome, BudgetExceededError):
            return request, outcome
        fallback = self.config.fallback_model
        if self.config.on_exceeded != "fallback" or fallback is None or request.model is fallback:
            return request, await self._refused(scope, outcome, estimate, micros)
        logger.info("budget: %s; falling back to model %r", outcome, fallback.name)
        request = replace(request, model=fallback)
        estimate = self._estimate(request)
        outcome = await self._reserve(scope, estimate, to_micros(estimate))
        if isinstance(outcome, BudgetExceededError):
            raise outcome
        return request, outcome

    def _estimate(self, request: ModelRequest) -> Decimal:
        return estimate_cost(request, default_max_tokens=self.config.default_max_tokens)

    async def _reserve(
        self, scope: _Scope, amount: Decimal, micros: int, *, approved: bool = False
    ) -> _Admission:
        per_call = self._limits["call"]
        if not approved and per_call is not None and micros > per_call:
            if self._joint is not None:
                await self._take_charges()  # the limiter answers first, as when it stood alone
            return BudgetExceededError(
                scope.tenant_id, scope="call", limit=from_micros(per_call), requested=amount
            )
        lines = scope.lines
        if not lines:
            return None
        if approved:  # an approved call goes through, and its cost is still counted
            lines = tuple(replace(line, limit_micros=None) for line in lines)
        rid = new_id()
        joint = self._joint
        handoff = None if joint is None else pending_for(self)
        try:
            if joint is not None and handoff is not None:
                # The limiter's charges and this reservation, in one store operation.
                reservation = (rid, lines, micros, self.config.reservation_ttl)
                refusal = await handoff.reserve(joint, self._unlosable, reservation)
            elif self._memory is not None:
                # Nothing to see through: the memory store reserves without waiting.
                ttl = self.config.reservation_ttl
                refusal = self._memory.reserve_nowait(rid, lines, micros, ttl)
            else:
                refusal = await self._hold(rid, lines, micros)
        except StoreError as error:
            if isinstance(error, GuardStoreError):
                raise  # the fused limiter failed closed: its refusal, not a store failure of ours
            return self._policy.failed(error, when_open=None)  # fail open: nothing held
        self._policy.succeeded()
        if refusal is None:
            return rid
        return BudgetExceededError(
            scope.tenant_id,
            scope=scope.names[[line.key for line in lines].index(refusal.key)],
            key=refusal.key,
            limit=from_micros(refusal.limit_micros),
            spent=from_micros(refusal.spent_micros + refusal.held_micros),
            requested=amount,
        )

    async def _hold(self, rid: str, lines: tuple[BudgetLine, ...], micros: int) -> Refusal | None:
        ttl = self.config.reservation_ttl
        return await self._unlosable(rid, self.store.reserve(rid, lines, micros, ttl))

    async def _take_charges(self) -> None:
        """Take the limiter's charges alone if this call left them here and nobody took them."""
        handoff = pending_for(self)
        if handoff is not None:
            await handoff.take_alone()

    async def _unlosable(self, rid: str, operation: Awaitable[T]) -> T:
        """Await a reservation `rid`; cancelled meanwhile, see it land, then release it."""
        reserving = asyncio.ensure_future(operation)
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

    async def _refused(
        self, scope: _Scope, error: BudgetExceededError, amount: Decimal, micros: int
    ) -> str | None:
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
        outcome = await self._reserve(scope, amount, micros, approved=True)
        if isinstance(outcome, BudgetExceededError):  # pragma: no cover - limits were lifted
            raise outcome
        return outcome

    async def _run(
        self,
        scope: _Scope,
        rid: str | None,
        next: Callable[[C], Awaitable[R]],
        call: C,
        price: Callable[[R], int | None],
        partial: Callable[[BaseException], int | None] | None = None,
    ) -> R:
        """Call `next`, then settle `rid` to `price(result)` micro-dollars, or release it.

        A call that raised is settled to `partial(error)` when that knows what the call used
        (a stream cut off midway), else released.
        """
        # Released when `price` says None, and on every other exit: error, timeout, cancel.
        try:
            if self._joint is not None:
                await self._take_charges()
            result = await next(call)
            micros = price(result)
        except BaseException as error:
            await self._end(scope, rid, None if partial is None else partial(error))
            raise
        await self._end(scope, rid, micros)
        return result

    async def _end(self, scope: _Scope, rid: str | None, micros: int | None) -> None:
        if rid is None:
            return
        memory = self._memory
        try:
            # Shielded: a second cancellation must not stop the reservation from ending. The
            # memory store ends it without waiting, so there is nothing for one to interrupt.
            if micros is None:
                if memory is not None:
                    memory.release_nowait(rid)
                else:
                    await asyncio.shield(self.store.release(rid))
                return
            if memory is not None:
                totals = memory.settle_nowait(rid, micros)
            else:
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
        if self._reached(scope, totals):
            await self._alerts(scope, totals)

    def _reached(self, scope: _Scope, totals: Mapping[str, int]) -> bool:
        """Whether any line reached an alert threshold: most calls reach none."""
        lowest = self._lowest
        for name, line in zip(scope.names, scope.lines, strict=True):
            mark, spent = lowest[name], totals.get(line.key)
            if mark is not None and spent is not None and spent >= mark:
                return True
        return False

    async def _alerts(self, scope: _Scope, totals: Mapping[str, int]) -> None:
        for name, line in zip(scope.names, scope.lines, strict=True):
            limit, spent = line.limit_micros, totals.get(line.key)
            if not limit or spent is None:
                continue
            for share, mark in self._marks[name]:
                if spent >= mark and await self._claim(line.key, str(share)):
                    alert = BudgetAlert(
                        scope=name,
                        key=line.key,
                        tenant_id=scope.tenant_id,
                        threshold=share,
                        limit=from_micros(limit),
                        spent=from_micros(spent),
                    )
                    await send_alert(self.config.on_alert, alert)

    async def _claim(self, key: str, share: str) -> bool:
        try:
            return await self.store.claim_alert(key, share)
        except StoreError as error:
            logger.warning("budget: alert %s of %s not claimed (%s)", share, key, error)
            return False
