"""`TenantCostTracker` (seed 000): one tenant's spend, breakdowns, budget and alerts.

The tracker records into a `CostLedger` (memory by default; SQLite or PostgreSQL to share
it between workers) and reads back what the ledger holds. Its budget runs per UTC calendar
month, named in the ledger's key, so a new month starts fresh with no reset job; each alert
threshold fires once per tenant and month across every worker that shares the ledger
(DEPENDENCIES lessons 4 and 5). Amounts are exact: micro-dollars in the ledger, `Decimal`
USD here.

Over 200 lines: the USD, threshold and alert helpers that `CostMiddleware` shares live here,
next to the tracker that defines their meaning.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import BudgetExceededError, ConfigError
from onionskin.core.ids import new_id
from onionskin.core.usage import Usage
from onionskin.pricing import from_micros, limit_micros, price_usage, to_micros
from onionskin.stores.ledger import (
    CostEntry,
    CostLedger,
    CostTotals,
    MemoryCostLedger,
    check_tenant,
    period_of,
)

logger = logging.getLogger("onionskin.cost")

AlertCallback = Callable[[str | None, int, float], Awaitable[None] | None]
"""`on_alert(tenant_id, threshold_pct, utilization_pct)`, sync or async."""


def to_usd(owner: str, field: str, value: object) -> Decimal:
    """`value` (int, float, str or Decimal) as an exact, finite USD amount >= 0.

    A float goes through `str` first, so `500.10` is `Decimal("500.10")`, not its binary
    approximation. Anything else is a `ConfigError` naming the field.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(f"{owner}.{field} must be a USD amount, got {value!r}")
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{owner}.{field} must be a finite USD amount >= 0, got {value!r}")
    return amount


def check_thresholds(owner: str, thresholds: object) -> tuple[int, ...]:
    """Alert thresholds: whole percentages of the budget, 1 to 1000, sorted and distinct."""
    if not isinstance(thresholds, tuple | list) or not all(
        type(pct) is int and 1 <= pct <= 1000 for pct in thresholds
    ):
        raise ConfigError(
            f"{owner}.alert_thresholds must be a tuple of int percentages 1..1000 (80 for 80 %), "
            f"got {thresholds!r}"
        )
    return tuple(sorted(set(thresholds)))


def utilization(spent_micros: int, limit: int) -> float:
    """The share of a budget of `limit` micro-dollars spent, in percent (100 for a zero one)."""
    if limit == 0:
        return 100.0
    return float(Decimal(spent_micros * 100) / Decimal(limit))


def current_period(clock: Clock) -> str:
    """The UTC calendar month the clock is in: `"2026-11"`."""
    return period_of(datetime.fromtimestamp(clock.time(), UTC))


async def fire_alerts(
    ledger: CostLedger,
    *,
    tenant_id: str | None,
    period: str,
    spent_micros: int,
    limit: int,
    thresholds: Iterable[int],
    on_alert: AlertCallback | None,
) -> None:
    """Claim every threshold `spent_micros` reached and tell `on_alert` of those claimed."""
    for pct in thresholds:
        # Exact: spent / limit >= pct / 100, in whole micro-dollars.
        if spent_micros * 100 < pct * limit:
            break
        if not await ledger.claim_alert(tenant_id=tenant_id, threshold_pct=pct, period=period):
            continue
        share = utilization(spent_micros, limit)
        if on_alert is None:
            logger.warning("cost: tenant %r reached %d %% of its %s budget", tenant_id, pct, period)
            continue
        try:
            outcome = on_alert(tenant_id, pct, share)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # The spend is recorded: a failing alert hook must not turn it into an error.
            logger.exception("cost: on_alert failed for tenant %r at %d %%", tenant_id, pct)


class TenantCostTracker:
    """One tenant's costs: record calls, read totals and breakdowns, enforce a monthly budget.

    The totals it shows (`total_cost`, `by_agent()`, `budget_remaining` ...) are those of the
    current month as of the last `record()` or `refresh()`: other workers' spend appears
    after `await tracker.refresh()`; `check_budget()` always refreshes first.

    Args:
        tenant_id: the tenant, as in `TenantContext`.
        budget_limit_usd: the monthly budget in USD (int, float, str or Decimal; >= 0).
        ledger: where costs are kept; an in-memory ledger by default.
        clock: where the time (and so the month) comes from.
        alert_thresholds: percentages of the budget at which `on_alert` fires, once each
            per month.
        on_alert: `on_alert(tenant_id, threshold_pct, utilization_pct)`, sync or async;
            None logs a warning instead.
    """

    def __init__(
        self,
        tenant_id: str,
        budget_limit_usd: float | int | str | Decimal = Decimal("500.00"),
        *,
        ledger: CostLedger | None = None,
        clock: Clock = SYSTEM_CLOCK,
        alert_thresholds: tuple[int, ...] = (80,),
        on_alert: AlertCallback | None = None,
    ) -> None:
        if tenant_id is None:
            raise ConfigError("TenantCostTracker needs a tenant_id (TenantContext.tenant_id)")
        check_tenant(tenant_id)
        if ledger is not None and not isinstance(ledger, CostLedger):
            raise ConfigError(f"TenantCostTracker.ledger must be a CostLedger, got {ledger!r}")
        if on_alert is not None and not callable(on_alert):
            raise ConfigError(f"TenantCostTracker.on_alert must be callable, got {on_alert!r}")
        self.tenant_id = tenant_id
        self.budget_limit_usd = to_usd("TenantCostTracker", "budget_limit_usd", budget_limit_usd)
        self.ledger: CostLedger = ledger if ledger is not None else MemoryCostLedger()
        self.clock = clock
        self.alert_thresholds = check_thresholds("TenantCostTracker", alert_thresholds)
        self.on_alert = on_alert
        self._limit = limit_micros(self.budget_limit_usd)
        self._totals = CostTotals(tenant_id=tenant_id, period=self.period)

    @property
    def period(self) -> str:
        """The current UTC calendar month: `"2026-11"`."""
        return current_period(self.clock)

    async def record(
        self,
        *,
        model: str,
        input_tokens: int,
        output_tokens: int,
        agent: str | None = None,
        call_id: str | None = None,
        cost_usd: float | int | str | Decimal | None = None,
        run_id: str | None = None,
    ) -> CostEntry:
        """Record one model call for this tenant; returns the entry the ledger holds.

        Args:
            model: the model's name (`"gpt-4o"`); it prices the call when `cost_usd` is None.
            input_tokens: prompt tokens.
            output_tokens: completion tokens.
            agent: the agent that made the call.
            call_id: the call's id; the same id recorded twice counts once. New by default.
            cost_usd: what the call cost; None prices it with the genai-prices table.
            run_id: the run the call belongs to.

        Raises:
            ConfigError: a bad value, or a model the price table does not know (pass cost_usd).
        """
        if cost_usd is None:
            if type(input_tokens) is not int or type(output_tokens) is not int:
                raise ConfigError(
                    f"token counts must be ints, got {input_tokens!r} and {output_tokens!r}"
                )
            usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
            try:
                cost = price_usage(model, usage)
            except ValueError as error:
                raise ConfigError(f"cannot price the call: {error}") from error
        else:
            cost = to_usd("TenantCostTracker.record", "cost_usd", cost_usd)
        entry = CostEntry(
            call_id=new_id() if call_id is None else call_id,
            tenant_id=self.tenant_id,
            run_id=run_id,
            agent=agent,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_micros=to_micros(cost),
            recorded_at=datetime.fromtimestamp(self.clock.time(), UTC),
        )
        outcome = await self.ledger.record(entry)
        await self.refresh()
        await fire_alerts(
            self.ledger,
            tenant_id=self.tenant_id,
            period=entry.period,
            spent_micros=outcome.period_total_micros,
            limit=self._limit,
            thresholds=self.alert_thresholds,
            on_alert=self.on_alert,
        )
        return outcome.entry

    async def refresh(self) -> CostTotals:
        """Read this month's totals from the ledger (other workers' spend included)."""
        totals = await self.ledger.totals(tenant_id=self.tenant_id, period=self.period)
        current = self._totals
        # Concurrent reads may finish out of order; an append-only month only grows.
        if current.period != totals.period or totals.calls >= current.calls:
            self._totals = totals
        return self._totals

    async def check_budget(self) -> None:
        """Refresh, then raise `BudgetExceededError` if nothing of the budget is left."""
        totals = await self.refresh()
        if self._limit - totals.total_micros <= 0:
            raise BudgetExceededError(
                self.tenant_id,
                scope="tenant",
                key=f"{self.tenant_id}:cost:{totals.period}",
                limit=self.budget_limit_usd,
                spent=from_micros(totals.total_micros),
            )

    def _current(self) -> CostTotals:
        totals = self._totals
        period = self.period
        # A new month began since the last read: nothing is known of it yet.
        return (
            totals
            if totals.period == period
            else CostTotals(tenant_id=self.tenant_id, period=period)
        )

    @property
    def total_cost(self) -> Decimal:
        """This tenant's spend this month, in USD."""
        return from_micros(self._current().total_micros)

    def by_agent(self) -> dict[str, Decimal]:
        """This month's spend per agent, in USD (calls outside an agent under `""`)."""
        return {name: from_micros(m) for name, m in self._current().by_agent.items()}

    def by_model(self) -> dict[str, Decimal]:
        """This month's spend per model, in USD."""
        return {name: from_micros(m) for name, m in self._current().by_model.items()}

    @property
    def budget_remaining(self) -> Decimal:
        """What is left of this month's budget, in USD; 0 once spent (never negative)."""
        return from_micros(max(self._limit - self._current().total_micros, 0))

    @property
    def budget_utilization_pct(self) -> float:
        """This month's spend as a percentage of the budget (above 100 when overspent)."""
        return utilization(self._current().total_micros, self._limit)
