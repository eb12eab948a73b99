"""`TenantCostTracker` (seed 000): totals, breakdowns, budget, alerts and monthly periods."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from onionskin.core.errors import BudgetExceededError, ConfigError, TenantError
from onionskin.core.usage import Usage
from onionskin.pricing import price_usage
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.ledger import CostLedger, MemoryCostLedger
from onionskin.stores.sql_ledger import SqlCostLedger
from onionskin.tenancy.cost import TenantCostTracker
from onionskin.testing import FakeClock

NOV_5 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC).timestamp()
NOV_30_LATE = datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp()

Factory = Callable[[str], SqlDatabase]
Alerts = list[tuple[str | None, int, float]]


def tracker(
    budget: Any = 100, *, clock: FakeClock | None = None, **options: Any
) -> TenantCostTracker:
    return TenantCostTracker("org_abc123", budget, clock=clock or FakeClock(NOV_5), **options)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_the_seed_example_end_to_end(backend: str, database_factory: Factory) -> None:
    ledger: CostLedger = MemoryCostLedger()
    if backend == "sqlite":
        ledger = await SqlCostLedger.open(database_factory("sqlite"))
    costs = TenantCostTracker(tenant_id="org_abc123", budget_limit_usd=500.00, ledger=ledger)

    entry = await costs.record(
        model="gpt-4o", input_tokens=1200, output_tokens=450, agent="style_analysis"
    )

    price = price_usage("gpt-4o", Usage(input_tokens=1200, output_tokens=450))
    assert price > 0
    assert (entry.tenant_id, entry.agent, entry.model) == ("org_abc123", "style_analysis", "gpt-4o")
    assert costs.total_cost == price
    assert costs.by_agent() == {"style_analysis": price}
    assert costs.by_model() == {"gpt-4o": price}
    assert costs.budget_remaining == Decimal("500.00") - price
    assert costs.budget_utilization_pct == pytest.approx(float(price / 5))
    assert not costs.budget_utilization_pct > 80
    await costs.check_budget()  # plenty left: no error


async def test_breakdowns_are_exact_to_the_micro_dollar() -> None:
    costs = tracker()
    await costs.record(model="m1", input_tokens=1, output_tokens=1, agent="a", cost_usd="0.000001")
    await costs.record(model="m1", input_tokens=1, output_tokens=1, agent="b", cost_usd=0.1)
    await costs.record(model="m2", input_tokens=1, output_tokens=1, agent="a", cost_usd=Decimal(2))
    await costs.record(model="m2", input_tokens=1, output_tokens=1, cost_usd=3)

    assert costs.total_cost == Decimal("5.100001")
    assert costs.by_agent() == {"a": Decimal("2.000001"), "b": Decimal("0.1"), "": Decimal(3)}
    assert costs.by_model() == {"m1": Decimal("0.100001"), "m2": Decimal(5)}
    assert costs.budget_remaining == Decimal("94.899999")
    assert costs.budget_utilization_pct == pytest.approx(5.100001)


async def test_a_spent_budget_clamps_at_zero_and_check_budget_raises() -> None:
    costs = tracker(10)
    await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd="9.99")
    await costs.check_budget()

    await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd="0.50")

    assert costs.budget_remaining == 0
    assert costs.budget_utilization_pct == pytest.approx(104.9)
    with pytest.raises(BudgetExceededError, match="org_abc123") as caught:
        await costs.check_budget()
    assert (caught.value.tenant_id, caught.value.limit, caught.value.spent) == (
        "org_abc123",
        Decimal(10),
        Decimal("10.49"),
    )


async def test_check_budget_sees_what_other_workers_spent() -> None:
    ledger = MemoryCostLedger()
    clock = FakeClock(NOV_5)
    mine, theirs = (tracker(5, clock=clock, ledger=ledger) for _ in range(2))
    await theirs.record(model="m", input_tokens=1, output_tokens=1, cost_usd=5)

    assert mine.total_cost == 0  # as of its last read: nothing yet
    with pytest.raises(BudgetExceededError):
        await mine.check_budget()
    assert mine.total_cost == Decimal(5)
    await mine.refresh()
    assert mine.budget_remaining == 0


async def test_a_call_id_recorded_twice_counts_once() -> None:
    costs = tracker()
    first = await costs.record(
        model="m", input_tokens=1, output_tokens=2, cost_usd=1, call_id="call-1", run_id="r1"
    )

    again = await costs.record(
        model="m", input_tokens=1, output_tokens=2, cost_usd=1, call_id="call-1", run_id="r1"
    )

    assert again == first
    assert costs.total_cost == Decimal(1)


async def test_alerts_fire_once_per_threshold_with_sync_or_async_callbacks() -> None:
    seen: Alerts = []
    heard: Alerts = []

    async def notify(tenant: str | None, pct: int, share: float) -> None:
        heard.append((tenant, pct, share))

    ledger = MemoryCostLedger()
    clock = FakeClock(NOV_5)

    def record_to(callback: Any) -> TenantCostTracker:
        return tracker(10, clock=clock, ledger=ledger, alert_thresholds=(80, 50), on_alert=callback)

    sync, not_sync = record_to(lambda *alert: seen.append(alert)), record_to(notify)
    await sync.record(model="m", input_tokens=1, output_tokens=1, cost_usd=4)
    assert seen == []
    await sync.record(model="m", input_tokens=1, output_tokens=1, cost_usd=1)  # 50 %
    await not_sync.record(model="m", input_tokens=1, output_tokens=1, cost_usd=4)  # 90 %
    await sync.record(model="m", input_tokens=1, output_tokens=1, cost_usd=1)  # 100 %

    assert seen == [("org_abc123", 50, 50.0)]
    assert heard == [("org_abc123", 80, 90.0)]


async def test_a_failing_alert_callback_is_logged_and_the_spend_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(tenant: str | None, pct: int, share: float) -> None:
        raise RuntimeError("pager down")

    costs = tracker(1, on_alert=broken)
    with caplog.at_level(logging.ERROR, logger="onionskin.cost"):
        await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd=1)

    assert costs.total_cost == Decimal(1)
    assert "on_alert failed" in caplog.text


async def test_without_a_callback_an_alert_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    costs = tracker(1)
    with caplog.at_level(logging.WARNING, logger="onionskin.cost"):
        await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd="0.9")

    assert "reached 80 % of its 2026-11 budget" in caplog.text


async def test_a_new_month_brings_a_fresh_budget_and_rearms_alerts() -> None:
    clock = FakeClock(NOV_30_LATE)
    fired: Alerts = []
    costs = tracker(10, clock=clock, on_alert=lambda *alert: fired.append(alert))
    await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd=10)
    with pytest.raises(BudgetExceededError):
        await costs.check_budget()

    clock.advance(120)  # 2026-12-01 00:01 UTC

    assert costs.period == "2026-12"
    assert costs.total_cost == 0  # known to be nothing yet, even before a refresh
    assert costs.budget_remaining == Decimal(10)
    assert costs.by_agent() == {}
    await costs.check_budget()
    await costs.record(model="m", input_tokens=1, output_tokens=1, cost_usd=9)
    assert [pct for _, pct, _ in fired] == [80, 80]
    assert costs.total_cost == Decimal(9)
    november = await costs.ledger.totals(tenant_id="org_abc123", period="2026-11")
    assert november.total_micros == 10_000_000


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(500.10, Decimal("500.1")), ("12.5", Decimal("12.5")), (7, Decimal(7)), (0, Decimal(0))],
)
def test_budget_limits_are_exact_whatever_their_type(budget: Any, expected: Decimal) -> None:
    costs = tracker(budget)

    assert costs.budget_limit_usd == expected
    assert costs.budget_remaining == expected


async def test_a_zero_budget_is_spent_from_the_start() -> None:
    costs = tracker(0)

    assert costs.budget_utilization_pct == 100.0
    with pytest.raises(BudgetExceededError):
        await costs.check_budget()


@pytest.mark.parametrize("budget", [-1, float("nan"), float("inf"), "lots", True, None, [5]])
def test_a_bad_budget_is_refused(budget: Any) -> None:
    with pytest.raises(ConfigError, match="budget_limit_usd"):
        tracker(budget)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"tenant_id": "org abc"}, TenantError, "tenant_id"),
        ({"tenant_id": None}, ConfigError, "needs a tenant_id"),
        ({"alert_thresholds": (0,)}, ConfigError, "alert_thresholds"),
        ({"alert_thresholds": 80}, ConfigError, "alert_thresholds"),
        ({"ledger": object()}, ConfigError, "CostLedger"),
        ({"on_alert": "page me"}, ConfigError, "callable"),
    ],
)
def test_bad_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"tenant_id": "acme", "budget_limit_usd": 1, **options}
    with pytest.raises(error, match=message):
        TenantCostTracker(**arguments)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"model": "no-such-model-xyz"}, "no price for model 'no-such-model-xyz'"),
        ({"input_tokens": -5}, "token counts"),
        ({"input_tokens": "5"}, "token counts must be ints"),
        ({"cost_usd": -1}, "cost_usd"),
        ({"cost_usd": 1, "output_tokens": -1}, "output_tokens"),
        ({"cost_usd": 1, "agent": ""}, "agent"),
    ],
)
async def test_a_bad_record_is_refused_and_nothing_is_recorded(
    call: dict[str, Any], message: str
) -> None:
    costs = tracker()
    arguments: dict[str, Any] = {"model": "gpt-4o", "input_tokens": 1, "output_tokens": 1, **call}

    with pytest.raises(ConfigError, match=message):
        await costs.record(**arguments)

    assert (await costs.refresh()).calls == 0
    assert costs.total_cost == 0
