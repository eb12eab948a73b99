"""The budget with its Redis down: fail closed by default, or fail open and log once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from onionskin import Agent, GuardStoreError, ModelRequest, Orchestrator, TenantContext
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.runtime.models.scripted import ScriptedModel
from onionskin.stores.redis_budget import RedisBudgetStore
from tests.conftest import DOWN_REDIS_URL
from tests.middleware.test_budget import run_tool, search_call


@pytest.fixture
async def down_store() -> AsyncIterator[RedisBudgetStore]:
    store = RedisBudgetStore.from_url(DOWN_REDIS_URL, prefix="onionskin-test:down")
    yield store
    await store.aclose()


def budget_on(store: RedisBudgetStore, *, fail_open: bool) -> BudgetMiddleware:
    config = BudgetConfig(
        per_tenant=Decimal(1), tool_costs={"search": Decimal("0.10")}, fail_open=fail_open
    )
    return BudgetMiddleware(config, store=store)


async def test_fail_closed_refuses_the_call_with_a_clear_error(
    down_store: RedisBudgetStore,
) -> None:
    budget = budget_on(down_store, fail_open=False)
    called: list[ModelRequest] = []

    def script(request: ModelRequest) -> str:
        called.append(request)
        return "never"

    runner = Orchestrator(Agent("a", model=ScriptedModel(script)), middleware=[budget])

    with pytest.raises(GuardStoreError) as refused:
        await runner.execute("hi", context=TenantContext(tenant_id="acme"))

    assert called == []
    assert refused.value.guard == "budget"
    assert "ConnectionError" in refused.value.cause
    assert "fail_open=True" in str(refused.value)


async def test_fail_closed_is_the_default(down_store: RedisBudgetStore) -> None:
    config = BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.10")})
    budget = BudgetMiddleware(config, store=down_store)

    with pytest.raises(GuardStoreError):
        await budget.wrap_tool_call(search_call(), run_tool)


async def test_fail_open_lets_calls_through_and_logs_once(
    down_store: RedisBudgetStore, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(down_store, fail_open=True)

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        results = [await budget.wrap_tool_call(search_call(), run_tool) for _ in range(3)]

    assert [result.value for result in results] == ["results for q"] * 3
    outages = [record for record in caplog.records if "failing open" in record.getMessage()]
    assert len(outages) == 1
    assert "budget" in outages[0].getMessage()


async def test_fail_open_runs_the_agent(
    down_store: RedisBudgetStore, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(down_store, fail_open=True)
    runner = Orchestrator(Agent("a", model=ScriptedModel(["hello"])), middleware=[budget])

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        result = await runner.execute("hi", context=TenantContext(tenant_id="acme"))

    assert result.output == "hello"
    assert "failing open" in caplog.text
