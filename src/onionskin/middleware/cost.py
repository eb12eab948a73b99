"""`CostMiddleware`: every model call in the cost ledger, and a monthly stop per tenant.

After each model call that answered, one ledger entry is recorded: the run's tenant, run
id and current agent, the model, its tokens and its exact cost (`model.cost(usage)` in
micro-dollars). It is recorded as soon as the model answers, so a run that fails later is
still billed for the calls it made, and a cancellation arriving during the write does not
stop it. A model call that raised used nothing billable and is not recorded. A ledger that
cannot be written fails the call loudly: the ledger is the bill.

With a budget (`budget_limit_usd`, or per tenant through `budget_for`), a call is refused
*before* the model is called once the tenant's spend in the current UTC month has reached
it: `BudgetExceededError`, or, with an approval queue, a request an operator can decide and
`ApprovalRequiredError` naming it. Run again with the same `run_id` once it is approved and
the rest of that run goes through (and is still recorded); outside a run, each refused call
asks anew. This is a stop after the fact, one call may overshoot; for a hard cap under
concurrency use `BudgetMiddleware`, which reserves each call's estimate first (DEPENDENCIES
lesson 1).

The checkpoint id of an approval request is read from `context.guard_state["checkpoint_id"]`
(or `context.state`), where a checkpointing layer may keep the run's latest one.

Over 200 lines: `ApprovalRequiredError` lives here until it moves to `onionskin.core.errors`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from onionskin.core.calls import ModelRequest, ModelResponse
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import RunContext, current_context_or_none
from onionskin.core.errors import ApprovalRequiredError, BudgetExceededError, ConfigError
from onionskin.core.ids import new_id
from onionskin.core.partial import partial_usage
from onionskin.core.usage import Usage
from onionskin.middleware.tenant_config import tenant_limits
from onionskin.pricing import estimate_cost, from_micros, limit_micros, to_micros
from onionskin.stores.approvals import ApprovalQueue
from onionskin.stores.ledger import CostEntry, CostLedger
from onionskin.tenancy.cost import (
    AlertCallback,
    check_thresholds,
    current_period,
    fire_alerts,
    to_usd,
)

Money = Decimal | int | float | str
BudgetFor = Callable[[str | None], Money | Awaitable[Money | None] | None]
"""`budget_for(tenant_id)`: the tenant's monthly budget in USD, or None; sync or async."""

CHECKPOINT_KEY = "checkpoint_id"
"""The `guard_state` (or `state`) key naming a run's latest checkpoint, if one is kept."""
_STATE_KEY = "cost"
_ESTIMATE_MAX_TOKENS = 4096  # the output bound of a refused call's estimate without max_tokens


class CostMiddleware:
    """Records every model call's cost in a ledger; stops tenants past their monthly budget.

    Args:
        ledger: where the costs go (`MemoryCostLedger`, `SqlCostLedger`).
        budget_limit_usd: every tenant's monthly budget in USD; None: no budget.
        budget_for: `budget_for(tenant_id)` (sync or async) gives a tenant's budget; when
            it answers None (or is not given), the run's tenant config
            (`limits.monthly_budget_usd`, see `TenantConfigMiddleware`) and then
            `budget_limit_usd` apply.
        approvals: where refused calls wait for an operator; None raises
            `BudgetExceededError` instead.
        alert_thresholds: percentages of a budget at which `on_alert` fires, once each per
            tenant and month.
        on_alert: `on_alert(tenant_id, threshold_pct, utilization_pct)`, sync or async.
        clock: where the time (and so the month) comes from.
    """

    def __init__(
        self,
        ledger: CostLedger,
        *,
        budget_limit_usd: Money | None = None,
        budget_for: BudgetFor | None = None,
        approvals: ApprovalQueue | None = None,
        alert_thresholds: tuple[int, ...] = (80,),
        on_alert: AlertCallback | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not isinstance(ledger, CostLedger):
            raise ConfigError(f"CostMiddleware needs a CostLedger, got {ledger!r}")
        if approvals is not None and not isinstance(approvals, ApprovalQueue):
            raise ConfigError(
                f"CostMiddleware.approvals must be an ApprovalQueue, got {approvals!r}"
            )
        for name, value in (("budget_for", budget_for), ("on_alert", on_alert)):
            if value is not None and not callable(value):
                raise ConfigError(f"CostMiddleware.{name} must be callable, got {value!r}")
        self.ledger = ledger
        self.budget_limit_usd = (
            None
            if budget_limit_usd is None
            else to_usd("CostMiddleware", "budget_limit_usd", budget_limit_usd)
        )
        self.budget_for = budget_for
        self._default_limit = (
            None if self.budget_limit_usd is None else limit_micros(self.budget_limit_usd)
        )
        self.approvals = approvals
        self.alert_thresholds = check_thresholds("CostMiddleware", alert_thresholds)
        self.on_alert = on_alert
        self.clock = clock

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Refuse the call if the tenant's budget is spent; record its cost once it answered."""
        ctx = current_context_or_none()
        tenant = None if ctx is None else ctx.tenant_id
        limit = await self._limit(ctx, tenant)
        if limit is not None:
            period = current_period(self.clock)
            spent = await self.ledger.spent(tenant_id=tenant, period=period)
            if spent >= limit:
                await self._refused(ctx, request, tenant, period, limit, spent)
        try:
            response = await next(request)
        except BaseException as error:
            # A stream cut off midway still used its prompt and what it sent (lesson 4).
            used = partial_usage(error)
            if used is not None:
                await asyncio.shield(self._record(ctx, request, used, None, tenant, limit))
            raise
        # Shielded: once the model answered, a cancellation must not lose its bill.
        await asyncio.shield(
            self._record(ctx, request, response.usage, response.model_name, tenant, limit)
        )
        return response

    async def _limit(self, ctx: RunContext | None, tenant: str | None) -> int | None:
        """The tenant's monthly budget in whole micro-dollars, or None."""
        if self.budget_for is not None:
            value = self.budget_for(tenant)
            if inspect.isawaitable(value):
                value = await value
            if value is not None:
                return limit_micros(to_usd("CostMiddleware", f"budget_for({tenant!r})", value))
        configured = tenant_limits(ctx).monthly_budget_usd
        if configured is not None:
            return limit_micros(configured)
        return self._default_limit

    async def _record(
        self,
        ctx: RunContext | None,
        request: ModelRequest,
        usage: Usage,
        model_name: str | None,
        tenant: str | None,
        limit: int | None,
    ) -> None:
        entry = CostEntry(
            # A fresh id per call: a run id may be reused (resumed runs), a call never is.
            call_id=new_id(),
            tenant_id=tenant,
            run_id=None if ctx is None else ctx.run_id,
            agent=None if ctx is None else ctx.current_agent or None,
            model=model_name or request.model.name,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_micros=to_micros(request.model.cost(usage)),
            recorded_at=datetime.fromtimestamp(self.clock.time(), UTC),
        )
        outcome = await self.ledger.record(entry)
        if limit is not None:
            await fire_alerts(
                self.ledger,
                tenant_id=tenant,
                period=entry.period,
                spent_micros=outcome.period_total_micros,
                limit=limit,
                thresholds=self.alert_thresholds,
                on_alert=self.on_alert,
            )

    async def _refused(
        self,
        ctx: RunContext | None,
        request: ModelRequest,
        tenant: str | None,
        period: str,
        limit: int,
        spent: int,
    ) -> None:
        """Raise the refusal, or return when an operator approved this run."""
        key = f"{tenant or '-'}:cost:{period}"
        fields: dict[str, Any] = {
            "scope": "tenant",
            "key": key,
            "limit": from_micros(limit),
            "spent": from_micros(spent),
        }
        approvals = self.approvals
        if approvals is None:
            raise BudgetExceededError(tenant, **fields)
        run_id = None if ctx is None else ctx.run_id
        state: dict[str, Any] = {} if ctx is None else ctx.guard_state.setdefault(_STATE_KEY, {})
        if state.get("approved"):
            return
        if run_id is not None:
            earlier = await approvals.list(tenant_id=tenant, run_id=run_id)
            if any(asked.status == "approved" for asked in earlier):
                state["approved"] = True
                return
            pending = [asked for asked in earlier if asked.status == "pending"]
            if pending:
                raise ApprovalRequiredError(tenant, approval_id=pending[-1].approval_id, **fields)
            if earlier:  # every request of this run was denied
                raise BudgetExceededError(tenant, **fields)
        estimate = estimate_cost(request, default_max_tokens=_ESTIMATE_MAX_TOKENS)
        agent = None if ctx is None else ctx.current_agent
        submitted = await approvals.submit(
            tenant_id=tenant,
            run_id=run_id,
            checkpoint_id=_checkpoint_id(ctx),
            reason=(
                f"tenant {tenant!r} has spent ${fields['spent']} of its ${fields['limit']} "
                f"budget for {period}; agent {agent!r} asks model {request.model.name!r} for "
                f"up to ${estimate}"
            ),
            amount_micros=to_micros(estimate),
        )
        raise ApprovalRequiredError(
            tenant, approval_id=submitted.approval_id, requested=estimate, **fields
        )


def _checkpoint_id(ctx: RunContext | None) -> str | None:
    """The run's latest checkpoint id, when a checkpointing layer left one in the context."""
    if ctx is None:
        return None
    for where in (ctx.guard_state, ctx.state):
        value = where.get(CHECKPOINT_KEY)
        if isinstance(value, str) and value:
            return value
    return None
