"""`/api/v1/costs` and `/api/v1/budget`: a tenant's spend by agent, model and day, its budget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from tests.conftest import SQL_BACKENDS
from tests.server.conftest import Served, acme, globex

from onionskin.core.clock import SYSTEM_CLOCK
from onionskin.server.routes._cost_days import daily_micros
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.ledger import CostEntry, MemoryCostLedger
from onionskin.stores.sql_ledger import LEDGER_MIGRATIONS, SqlCostLedger
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider
from onionskin.tenancy.cost import current_period


async def get(served: Served, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await served.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def usd(micros: int) -> str:
    return f"{Decimal(micros).scaleb(-6):.6f}"


def entry(call_id: str, moment: datetime, micros: int, *, tenant: str = "acme") -> CostEntry:
    return CostEntry(
        call_id=call_id,
        tenant_id=tenant,
        run_id="run-1",
        agent="writer",
        model="gpt-4o",
        input_tokens=10,
        output_tokens=5,
        cost_micros=micros,
        recorded_at=moment,
    )


async def test_costs_break_the_month_down_by_agent_model_and_day(served: Served) -> None:
    for _ in range(2):
        ran = await served.client.post(
            "/api/v1/pipelines/research/execute", json={"input": "go"}, headers=acme()
        )
        assert ran.status_code == 200
    await served.client.post(
        "/api/v1/pipelines/echo/execute", json={"input": "x"}, headers=globex()
    )
    month = current_period(SYSTEM_CLOCK)
    recorded = await served.runner.ledger.entries(tenant_id="acme", period=month)

    costs = await get(served, "/api/v1/costs", acme())

    total = sum(e.cost_micros for e in recorded)
    assert total > 0
    assert costs["period"] == month
    assert costs["calls"] == len(recorded) == 6  # per run: two tooling calls and one echo
    assert costs["total_usd"] == usd(total)
    assert costs["by_agent"] == {
        agent: usd(sum(e.cost_micros for e in recorded if e.agent == agent))
        for agent in ("assistant", "echo")
    }
    assert costs["by_model"] == {
        model: usd(sum(e.cost_micros for e in recorded if e.model == model))
        for model in ("tooling", "echo")
    }
    days = {f"{e.recorded_at:%Y-%m-%d}" for e in recorded}
    assert costs["by_day"] == {
        day: usd(sum(e.cost_micros for e in recorded if f"{e.recorded_at:%Y-%m-%d}" == day))
        for day in days
    }


async def test_each_tenant_sees_its_own_spend_only(served: Served) -> None:
    await served.client.post("/api/v1/pipelines/echo/execute", json={"input": "x"}, headers=acme())

    theirs = await get(served, "/api/v1/organizations/globex/costs", globex())
    budget = await get(served, "/api/v1/budget", globex())
    refused = await served.client.get("/api/v1/organizations/acme/costs", headers=globex())

    assert theirs["calls"] == 0
    assert theirs["total_usd"] == "0.000000"
    assert theirs["by_agent"] == theirs["by_model"] == theirs["by_day"] == {}
    assert budget["spent_usd"] == "0.000000"
    assert refused.status_code == 403


async def test_days_are_utc_days_of_the_month_asked_for(served: Served) -> None:
    ledger = served.runner.ledger
    plus_two = timezone(timedelta(hours=2))
    await ledger.record_many(
        [
            entry("a", datetime(2025, 3, 1, 8, 0, tzinfo=UTC), 1_000),
            # 01:00 at UTC+2 is still the 1st in UTC: counted on 2025-03-01.
            entry("b", datetime(2025, 3, 2, 1, 0, tzinfo=plus_two), 250),
            entry("c", datetime(2025, 3, 31, 23, 59, tzinfo=UTC), 5),
            entry("d", datetime(2025, 4, 1, 0, 0, tzinfo=UTC), 7_000_000),
        ]
    )
    await ledger.record(entry("e", datetime(2025, 3, 1, 9, 0, tzinfo=UTC), 99, tenant="globex"))

    march = await get(served, "/api/v1/costs?period=2025-03", acme())
    april = await get(served, "/api/v1/costs?period=2025-04", acme())

    assert march["by_day"] == {"2025-03-01": "0.001250", "2025-03-31": "0.000005"}
    assert march["total_usd"] == "0.001255"
    assert march["calls"] == 3
    assert april["by_day"] == {"2025-04-01": "7.000000"}
    assert april["by_agent"] == {"writer": "7.000000"}


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_days_on_each_sql_backend_are_utc_days_of_the_tenant_only(
    backend: str, database_factory: Callable[[str], SqlDatabase]
) -> None:
    database = database_factory(backend)
    await migrate(database, "ledger", LEDGER_MIGRATIONS)  # as a deploy would
    ledger = await SqlCostLedger.open(database)
    await ledger.record_many(
        [
            entry("a", datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2))), 7),
            entry("b", datetime(2025, 3, 2, 0, 30, tzinfo=UTC), 3),
            entry("c", datetime(2025, 3, 9, 12, 0, tzinfo=UTC), 40),
        ]
    )
    await ledger.record(entry("d", datetime(2025, 3, 9, 12, 0, tzinfo=UTC), 500, tenant="globex"))

    days = await daily_micros(ledger, tenant_id="acme", period="2025-03")

    assert days == {"2025-03-02": 10, "2025-03-09": 40}


async def test_a_ledger_without_sql_counts_days_from_its_entries() -> None:
    ledger = MemoryCostLedger()
    await ledger.record_many(
        [
            entry("a", datetime(2025, 3, 1, 8, 0, tzinfo=UTC), 1_000),
            entry("b", datetime(2025, 3, 1, 22, 0, tzinfo=timezone(timedelta(hours=-5))), 20),
        ]
    )

    days = await daily_micros(ledger, tenant_id="acme", period="2025-03")

    assert days == {"2025-03-01": 1_000, "2025-03-02": 20}


async def test_budget_without_one_configured_is_unknown(served: Served) -> None:
    budget = await get(served, "/api/v1/budget?period=2025-03", acme())

    assert budget == {
        "period": "2025-03",
        "limit_usd": None,
        "spent_usd": "0.000000",
        "remaining_usd": None,
        "utilization_pct": None,
        "alerts": [],
        "source": None,
    }


async def test_budget_uses_the_tenants_monthly_budget_from_its_config(served: Served) -> None:
    configs: SqlTenantConfigProvider = served.app.state.tenant_configs
    await configs.set_config("acme", {"limits": {"monthly_budget_usd": "0.010"}})
    ledger = served.runner.ledger
    await ledger.record(entry("a", datetime(2025, 3, 4, tzinfo=UTC), 8_500))  # 85 %

    march = await get(served, "/api/v1/budget?period=2025-03", acme())
    april = await get(served, "/api/v1/budget?period=2025-04", acme())
    await ledger.record(entry("b", datetime(2025, 3, 5, tzinfo=UTC), 2_000))  # 105 %
    over = await get(served, "/api/v1/budget?period=2025-03", acme())
    theirs = await get(served, "/api/v1/budget?period=2025-03", globex())

    assert march["limit_usd"] == "0.010000"
    assert march["spent_usd"] == "0.008500"
    assert march["remaining_usd"] == "0.001500"
    assert march["utilization_pct"] == 85.0
    assert march["source"] == "tenant config"
    assert [(a["threshold_pct"], a["level"], a["reached"]) for a in march["alerts"]] == [
        (80, "warning", True),
        (100, "exceeded", False),
    ]
    assert april["spent_usd"] == "0.000000"
    assert [a["reached"] for a in april["alerts"]] == [False, False]
    assert over["remaining_usd"] == "0.000000"
    assert over["utilization_pct"] == 105.0
    assert [a["reached"] for a in over["alerts"]] == [True, True]
    assert theirs["limit_usd"] is None


async def test_a_config_whose_limits_do_not_parse_shows_no_budget(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    configs: SqlTenantConfigProvider = served.app.state.tenant_configs
    await configs.set_config("acme", {"limits": {"monthly_budget_usd": "lots"}})

    budget = await get(served, "/api/v1/budget", acme())

    assert budget["limit_usd"] is None
    assert "no budget for tenant 'acme'" in caplog.text


@pytest.mark.parametrize("period", ["2025-13", "2025-3", "25-03", "2025-03-01", "march"])
@pytest.mark.parametrize("route", ["costs", "budget"])
async def test_a_period_that_is_not_a_month_is_422(served: Served, route: str, period: str) -> None:
    response = await served.client.get(f"/api/v1/{route}?period={period}", headers=acme())

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
