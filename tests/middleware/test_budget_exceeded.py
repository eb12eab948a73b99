"""When a budget would be overdrawn: fallback, approval, alerts, and UTC calendar periods."""

from __future__ import annotations

import asyncio
import logging
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from onionskin import Agent, BudgetExceededError, ModelRequest, Orchestrator
from onionskin.middleware.budget import (
    BudgetAlert,
    BudgetConfig,
    BudgetMiddleware,
    period_label,
)
from onionskin.runtime.models.scripted import Script, ScriptedModel
from onionskin.stores.budget import BudgetLine, MemoryBudgetStore
from onionskin.testing import FakeClock
from tests.middleware.test_budget import (
    ACME,
    FIVE_TOKENS,
    orchestrator,
    priced,
    run_tool,
    search_call,
)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def tool_budget(clock: FakeClock | None = None, **options: Any) -> BudgetMiddleware:
    """A budget on `search` calls at $0.10 each, on a fake clock."""
    config = BudgetConfig(tool_costs={"search": Decimal("0.10")}, **options)
    return BudgetMiddleware(config, clock=clock or FakeClock())


# --- fallback ---------------------------------------------------------------------------------


def expensive(script: Script) -> ScriptedModel:
    return ScriptedModel(script, name="big", output_price_per_mtok=CENTS_10)


CENTS_10 = 100_000  # USD per million output tokens: $0.10 a token


async def test_a_refused_model_call_falls_back_to_the_cheaper_model() -> None:
    cheap_requests: list[ModelRequest] = []

    def cheap_script(request: ModelRequest) -> str:
        cheap_requests.append(request)
        return FIVE_TOKENS

    cheap = priced(cheap_script, name="small")
    budget = BudgetMiddleware(
        BudgetConfig(per_run=Decimal("0.50"), on_exceeded="fallback", fallback_model=cheap)
    )
    big = expensive(["never used"])
    runner = Orchestrator(
        Agent("assistant", model=big, settings={"max_tokens": 10}), middleware=[budget]
    )

    result = await runner.execute("hi", context=ACME, run_id="run-1")

    assert result.output == FIVE_TOKENS
    assert [request.model for request in cheap_requests] == [cheap]
    assert await budget.spent(budget.run_key("run-1", tenant_id="acme")) == Decimal("0.05")


async def test_a_fallback_that_does_not_fit_either_raises() -> None:
    cheap = priced(["never used"], name="small")
    budget = BudgetMiddleware(
        BudgetConfig(per_run=Decimal("0.05"), on_exceeded="fallback", fallback_model=cheap)
    )
    runner = Orchestrator(
        Agent("assistant", model=expensive(["never"]), settings={"max_tokens": 10}),
        middleware=[budget],
    )

    with pytest.raises(BudgetExceededError) as refused:
        await runner.execute("hi", context=ACME)

    assert (refused.value.scope, refused.value.requested) == ("run", Decimal("0.10"))


async def test_a_tool_call_cannot_fall_back_and_is_refused() -> None:
    budget = tool_budget(
        per_session=Decimal("0.05"), on_exceeded="fallback", fallback_model=priced(["x"])
    )

    with pytest.raises(BudgetExceededError):
        await budget.wrap_tool_call(search_call(), run_tool)


# --- approval ---------------------------------------------------------------------------------


async def test_an_approved_call_goes_through_and_is_still_counted() -> None:
    asked: list[BudgetExceededError] = []

    def approve(refusal: BudgetExceededError) -> bool:
        asked.append(refusal)
        return True

    budget = tool_budget(per_session=Decimal("0.15"), on_exceeded="approve", approve=approve)
    results = [await budget.wrap_tool_call(search_call(), run_tool) for _ in range(3)]

    assert [result.status for result in results] == ["success"] * 3
    assert len(asked) == 2  # the second and third calls did not fit
    assert (asked[0].scope, asked[0].spent, asked[0].requested) == (
        "session",
        Decimal("0.10"),
        Decimal("0.10"),
    )
    assert asked[1].spent == Decimal("0.20")
    assert await budget.spent(budget.session_key("s1")) == Decimal("0.30")


async def test_an_async_approval_that_declines_raises_the_refusal() -> None:
    asked: list[BudgetExceededError] = []

    async def approve(refusal: BudgetExceededError) -> bool:
        asked.append(refusal)
        await asyncio.sleep(0)
        return False

    budget = tool_budget(per_call=Decimal("0.05"), on_exceeded="approve", approve=approve)

    with pytest.raises(BudgetExceededError) as refused:
        await budget.wrap_tool_call(search_call(), run_tool)

    assert refused.value is asked[0]
    assert (refused.value.scope, refused.value.limit) == ("call", Decimal("0.05"))


async def test_only_true_approves() -> None:
    budget = tool_budget(
        per_session=Decimal("0.05"),
        on_exceeded="approve",
        approve=lambda refusal: "yes",  # truthy, but not True
    )

    with pytest.raises(BudgetExceededError):
        await budget.wrap_tool_call(search_call(), run_tool)


def test_the_refusal_survives_pickling() -> None:
    error = BudgetExceededError(
        "acme", scope="run", key="acme:run:1", limit=Decimal(1), spent=Decimal("0.9")
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.tenant_id, copy.scope, copy.key, copy.limit, copy.spent) == (
        "acme",
        "run",
        "acme:run:1",
        Decimal(1),
        Decimal("0.9"),
    )


# --- alerts -----------------------------------------------------------------------------------


async def test_each_alert_threshold_fires_once() -> None:
    alerts: list[BudgetAlert] = []

    async def on_alert(alert: BudgetAlert) -> None:
        alerts.append(alert)

    budget = tool_budget(per_session=Decimal(1), alert_thresholds=(0.5, 0.8), on_alert=on_alert)

    for _ in range(10):
        await budget.wrap_tool_call(search_call(), run_tool)

    assert [(a.threshold, a.spent, a.scope) for a in alerts] == [
        (Decimal("0.5"), Decimal("0.5"), "session"),
        (Decimal("0.8"), Decimal("0.8"), "session"),
    ]
    assert alerts[0].limit == Decimal(1)
    assert alerts[0].key == budget.session_key("s1")


async def test_workers_sharing_a_store_fire_each_alert_once_in_all() -> None:
    alerts: list[BudgetAlert] = []
    store = MemoryBudgetStore(clock=FakeClock())
    config = BudgetConfig(
        per_session=Decimal(1), tool_costs={"search": Decimal("0.10")}, on_alert=alerts.append
    )
    workers = [BudgetMiddleware(config, store=store) for _ in range(3)]

    await asyncio.gather(
        *(workers[i % 3].wrap_tool_call(search_call(), run_tool) for i in range(10))
    )

    assert [alert.threshold for alert in alerts] == [Decimal("0.8")]


async def test_without_a_callback_an_alert_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = tool_budget(per_session=Decimal("0.20"), alert_thresholds=(0.5,))

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        for _ in range(2):
            await budget.wrap_tool_call(search_call(), run_tool)

    assert [r.getMessage() for r in caplog.records if "reached" in r.getMessage()] == [
        f"budget: session budget {budget.session_key('s1')} reached 0.5 of its $0.2 limit "
        "($0.1 spent)"
    ]


async def test_a_failing_alert_callback_does_not_lose_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_alert(alert: BudgetAlert) -> None:
        raise RuntimeError("pager down")

    budget = tool_budget(per_session=Decimal("0.10"), on_alert=on_alert)

    with caplog.at_level(logging.ERROR, logger="onionskin.guards"):
        result = await budget.wrap_tool_call(search_call(), run_tool)

    assert result.value == "results for q"
    assert "on_alert callback failed" in caplog.text


# --- calendar periods (UTC), driven by the injected clock ------------------------------------


@pytest.mark.parametrize(
    ("period", "iso", "label"),
    [
        ("day", "2026-11-05T23:59:59", "day:2026-11-05"),
        ("day", "2026-11-06T00:00:00", "day:2026-11-06"),
        ("month", "2026-11-30T23:59:59", "month:2026-11"),
        ("month", "2026-12-01T00:00:00", "month:2026-12"),
        ("total", "2026-12-01T00:00:00", "total"),
    ],
)
def test_periods_are_utc_calendar_periods(period: Any, iso: str, label: str) -> None:
    assert period_label(period, at(iso)) == label


async def test_a_daily_tenant_budget_starts_afresh_at_utc_midnight() -> None:
    clock = FakeClock(start=at("2026-11-05T23:58:00"))
    alerts: list[BudgetAlert] = []
    budget = BudgetMiddleware(
        BudgetConfig(per_tenant=Decimal("0.10"), tenant_period="day", on_alert=alerts.append),
        clock=clock,
    )
    runner = orchestrator(budget, lambda request: FIVE_TOKENS)

    await runner.execute("hi", context=ACME)
    with pytest.raises(BudgetExceededError) as refused:
        await runner.execute("hi", context=ACME)
    clock.advance(119)  # 23:59:59, still the same day
    with pytest.raises(BudgetExceededError):
        await runner.execute("hi", context=ACME)
    clock.advance(1)
    await runner.execute("hi", context=ACME)

    assert refused.value.key == "acme:tenant:day:2026-11-05"
    assert budget.tenant_key("acme") == "acme:tenant:day:2026-11-06"
    assert await budget.spent("acme:tenant:day:2026-11-05") == Decimal("0.05")
    assert await budget.spent("acme:tenant:day:2026-11-06") == Decimal("0.05")
    assert [alert.key for alert in alerts] == []  # 0.05 of 0.10 is below 0.8


async def test_an_alert_fires_again_in_the_next_period() -> None:
    clock = FakeClock(start=at("2026-11-30T12:00:00"))
    alerts: list[BudgetAlert] = []
    budget = tool_budget(
        clock, per_tenant=Decimal("0.10"), tenant_period="month", on_alert=alerts.append
    )

    await budget.wrap_tool_call(search_call(), run_tool)  # outside a run: tenant "-"
    with pytest.raises(BudgetExceededError):
        await budget.wrap_tool_call(search_call(), run_tool)
    clock.advance(86_400)  # December
    await budget.wrap_tool_call(search_call(), run_tool)

    assert [alert.key for alert in alerts] == ["-:tenant:month:2026-11", "-:tenant:month:2026-12"]


async def test_an_unsettled_reservation_lapses_after_its_ttl() -> None:
    clock = FakeClock()
    budget = tool_budget(clock, per_session=Decimal("0.10"), reservation_ttl=30)
    key = budget.session_key("s1")
    await budget.store.reserve("crashed-worker", [BudgetLine(key, 100_000)], 100_000, ttl=30)

    with pytest.raises(BudgetExceededError):
        await budget.wrap_tool_call(search_call(), run_tool)
    clock.advance(30)
    result = await budget.wrap_tool_call(search_call(), run_tool)

    assert result.status == "success"
    assert await budget.spent(key) == Decimal("0.10")
