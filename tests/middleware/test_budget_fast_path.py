"""What the budget guard works out once rather than per call stays right.

The tenant's period and budget line are kept per period, tool prices are converted at
construction, and the memory store's reservations need no task: each shortcut must give
exactly what the slow way gives, per tenant and per period, and stores that may wait keep
the shielded path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from onionskin import TenantContext, ToolCall, ToolResult
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware, Period, period_label
from onionskin.stores.budget import BudgetLine, MemoryBudgetStore, Refusal
from onionskin.testing import FakeClock
from tests.middleware.test_budget import ACME, FIVE_TOKENS, orchestrator, run_tool, search_call


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


class SetClock(FakeClock):
    """A clock that can also be set back, as a system clock sometimes is."""

    def set(self, now: float) -> None:
        self._now = now


@pytest.mark.parametrize("period", ["day", "month", "total"])
def test_the_kept_period_label_always_matches_a_fresh_one(period: Period) -> None:
    clock = SetClock()
    budget = BudgetMiddleware(
        BudgetConfig(per_tenant=Decimal(1), tenant_period=period), clock=clock
    )
    moments = [
        at("2026-11-30T23:59:59.999999"),
        at("2026-12-01T00:00:00"),
        at("2026-12-31T23:59:59"),
        at("2027-01-01T00:00:00"),
        at("2026-11-30T12:00:00"),  # the clock was set back
        at("2026-12-01T00:00:00") - 3e-7,  # read as the next day's first microsecond
        at("2027-02-28T23:59:59.5"),
        at("2027-03-01T00:00:00"),
    ]

    for moment in moments:
        clock.set(moment)
        assert budget.tenant_key("acme") == f"acme:tenant:{period_label(period, moment)}"


async def test_tenants_sharing_a_guard_across_a_new_period_each_keep_their_own_line() -> None:
    clock = FakeClock(start=at("2026-11-05T23:59:00"))
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1), tenant_period="day"), clock=clock)
    runner = orchestrator(budget, lambda request: FIVE_TOKENS)
    globex = TenantContext(tenant_id="globex")

    await runner.execute("hi", context=ACME)
    await runner.execute("hi", context=globex)
    await runner.execute("hi", context=ACME)
    clock.advance(60)  # the 6th, UTC
    await runner.execute("hi", context=globex)

    spent = {
        key: await budget.spent(key)
        for key in (
            "acme:tenant:day:2026-11-05",
            "globex:tenant:day:2026-11-05",
            "acme:tenant:day:2026-11-06",
            "globex:tenant:day:2026-11-06",
        )
    }
    assert list(spent.values()) == [Decimal("0.10"), Decimal("0.05"), 0, Decimal("0.05")]


async def test_a_tool_price_is_charged_per_tool_name() -> None:
    costs = {"search": Decimal("0.000123"), "fetch": Decimal("0.5")}
    budget = BudgetMiddleware(BudgetConfig(per_session=Decimal(10), tool_costs=costs))

    async def fetch(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name="fetch", value="page")

    await budget.wrap_tool_call(search_call(), run_tool)
    await budget.wrap_tool_call(ToolCall(tool_name="fetch", session_id="s1"), fetch)

    ledger = await budget.store.ledger(budget.session_key("s1"))
    assert sorted(ledger.values()) == [123, 500_000]


class TaskCounter:
    """A loop task factory that notes every task made while it is installed."""

    def __init__(self) -> None:
        self.made: list[object] = []

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **options: Any,
    ) -> asyncio.Task[Any]:
        self.made.append(coro)
        return asyncio.Task(coro, loop=loop, **options)


async def test_the_memory_store_reserves_and_settles_without_a_task() -> None:
    budget = BudgetMiddleware(
        BudgetConfig(per_tenant=Decimal(1), tool_costs={"search": Decimal("0.10")})
    )
    loop = asyncio.get_running_loop()
    counter = TaskCounter()

    loop.set_task_factory(counter)
    try:
        result = await budget.wrap_tool_call(search_call(), run_tool)
    finally:
        loop.set_task_factory(None)

    assert result.status == "success"
    assert counter.made == []
    assert await budget.spent(budget.tenant_key(None)) == Decimal("0.10")


async def test_a_store_that_answers_late_is_still_waited_for_and_released() -> None:
    """A memory store subclass may wait: it keeps the shielded path of remote stores."""
    answering = asyncio.Event()

    class SlowStore(MemoryBudgetStore):
        async def reserve(
            self, reservation_id: str, lines: Any, amount_micros: int, ttl: float
        ) -> Refusal | None:
            refusal = await super().reserve(reservation_id, lines, amount_micros, ttl)
            answering.set()  # the hold has landed, the answer is still on its way
            await asyncio.sleep(0.01)
            return refusal

    config = BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.40")})
    budget = BudgetMiddleware(config, store=SlowStore(clock=FakeClock()))
    ran = False

    async def tool(call: ToolCall) -> ToolResult:
        nonlocal ran
        ran = True
        return await run_tool(call)

    task = asyncio.create_task(budget.wrap_tool_call(search_call(), tool))
    await answering.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    key = budget.session_key("s1")
    assert ran is False
    assert (await budget.store.held(key), await budget.store.spent(key)) == (0, 0)


async def test_settled_holds_do_not_pile_up_and_a_live_one_still_lapses() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore(clock=clock)
    line = BudgetLine("t:run", 1_000)
    await store.reserve("stuck", [line], 100, ttl=5)

    for index in range(1_000):
        assert await store.reserve(f"c{index}", [line], 900, ttl=60) is None
        await store.settle(f"c{index}", 0)

    # Private on purpose: what is measured is the memory the line keeps.
    assert len(store._lines["t:run"].expiries) < 100
    assert await store.held("t:run") == 100
    clock.advance(5)
    assert await store.held("t:run") == 0
    assert await store.reserve("full", [line], 1_000, ttl=60) is None
