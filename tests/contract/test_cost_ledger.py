"""One contract for every cost ledger: memory, SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from onionskin.core.errors import ConfigError, StoreError, TenantError
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.ledger import CostEntry, CostLedger, MemoryCostLedger
from onionskin.stores.sql_ledger import LEDGER_MIGRATIONS, SqlCostLedger, open_cost_ledger

NOV = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

Factory = Callable[[str], SqlDatabase]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def ledger(
    request: pytest.FixtureRequest, database_factory: Factory
) -> AsyncIterator[CostLedger]:
    if request.param == "memory":
        yield MemoryCostLedger()
        return
    database = database_factory(request.param)
    await migrate(database, "ledger", LEDGER_MIGRATIONS)  # as a deploy would
    yield await SqlCostLedger.open(database)


def entry(call_id: str = "c1", **changes: Any) -> CostEntry:
    fields: dict[str, Any] = {
        "call_id": call_id,
        "tenant_id": "acme",
        "run_id": "run-1",
        "agent": "writer",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 450,
        "cost_micros": 7_500,
        "recorded_at": NOV,
    }
    fields.update(changes)
    return CostEntry(**fields)


async def test_a_recorded_call_shows_in_the_totals_and_entries(ledger: CostLedger) -> None:
    outcome = await ledger.record(entry())

    assert outcome.recorded
    assert outcome.entry == entry()
    assert outcome.period_total_micros == 7_500
    totals = await ledger.totals(tenant_id="acme", period="2026-11")
    assert (totals.total_micros, totals.calls) == (7_500, 1)
    assert dict(totals.by_agent) == {"writer": 7_500}
    assert dict(totals.by_model) == {"gpt-4o": 7_500}
    assert await ledger.entries(tenant_id="acme", period="2026-11") == [entry()]
    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500


async def test_the_same_call_id_counts_once(ledger: CostLedger) -> None:
    await ledger.record(entry())
    later = entry(recorded_at=NOV + timedelta(minutes=5))  # a retried write of the same call

    outcome = await ledger.record(later)

    assert not outcome.recorded
    assert outcome.entry == entry()  # the first recording stands
    assert outcome.period_total_micros == 7_500
    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500
    assert len(await ledger.entries(tenant_id="acme", period="2026-11")) == 1


async def test_a_call_id_reused_with_other_content_is_refused(ledger: CostLedger) -> None:
    await ledger.record(entry())

    with pytest.raises(StoreError, match="'c1' is already in the ledger with different content"):
        await ledger.record(entry(cost_micros=9_999))

    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500
    assert await ledger.entries(tenant_id="acme", period="2026-11") == [entry()]


async def test_breakdowns_are_exact_per_agent_and_model(ledger: CostLedger) -> None:
    calls = [
        entry("a", agent="writer", model="gpt-4o", cost_micros=1_000_001),
        entry("b", agent="writer", model="gpt-4o-mini", cost_micros=3),
        entry("c", agent="editor", model="gpt-4o", cost_micros=250_000),
        entry("d", agent=None, model="gpt-4o-mini", cost_micros=7),
    ]
    for call in calls:
        await ledger.record(call)

    totals = await ledger.totals(tenant_id="acme", period="2026-11")

    assert totals.total_micros == 1_250_011
    assert totals.calls == 4
    assert dict(totals.by_agent) == {"writer": 1_000_004, "editor": 250_000, "": 7}
    assert dict(totals.by_model) == {"gpt-4o": 1_250_001, "gpt-4o-mini": 10}


async def test_tenants_never_see_each_others_costs(ledger: CostLedger) -> None:
    await ledger.record(entry("c1", tenant_id="acme"))
    await ledger.record(entry("c1", tenant_id="globex", cost_micros=5))  # same id, other tenant
    await ledger.record(entry("c2", tenant_id=None, cost_micros=11))

    globex = await ledger.totals(tenant_id="globex", period="2026-11")
    assert (globex.total_micros, globex.calls) == (5, 1)
    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500
    assert await ledger.spent(tenant_id=None, period="2026-11") == 11
    assert await ledger.spent(tenant_id="initech", period="2026-11") == 0
    assert [e.tenant_id for e in await ledger.entries(tenant_id="globex", period="2026-11")] == [
        "globex"
    ]
    assert await ledger.entries(tenant_id="initech", period="2026-11") == []


async def test_each_month_is_its_own_period(ledger: CostLedger) -> None:
    await ledger.record(entry("nov"))
    outcome = await ledger.record(entry("dec", recorded_at=DEC, cost_micros=40))

    assert outcome.entry.period == "2026-12"
    assert outcome.period_total_micros == 40
    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500
    assert [e.call_id for e in await ledger.entries(tenant_id="acme", period="2026-12")] == ["dec"]


async def test_entries_come_newest_first_up_to_the_limit(ledger: CostLedger) -> None:
    for minute in range(5):
        await ledger.record(entry(f"c{minute}", recorded_at=NOV + timedelta(minutes=minute)))

    found = await ledger.entries(tenant_id="acme", period="2026-11", limit=3)

    assert [e.call_id for e in found] == ["c4", "c3", "c2"]
    assert found[0].recorded_at == NOV + timedelta(minutes=4)


async def test_an_alert_is_claimed_once_per_tenant_threshold_and_period(
    ledger: CostLedger,
) -> None:
    claims = [
        await ledger.claim_alert(tenant_id="acme", threshold_pct=80, period="2026-11"),
        await ledger.claim_alert(tenant_id="acme", threshold_pct=80, period="2026-11"),
        await ledger.claim_alert(tenant_id="acme", threshold_pct=100, period="2026-11"),
        await ledger.claim_alert(tenant_id="acme", threshold_pct=80, period="2026-12"),
        await ledger.claim_alert(tenant_id="globex", threshold_pct=80, period="2026-11"),
        await ledger.claim_alert(tenant_id=None, threshold_pct=80, period="2026-11"),
    ]

    assert claims == [True, False, True, True, True, True]


async def test_concurrent_records_and_claims_in_one_process(ledger: CostLedger) -> None:
    calls = [entry(f"c{n}", cost_micros=n + 1) for n in range(40)]

    outcomes = await asyncio.gather(*(ledger.record(call) for call in calls + calls[:10]))
    claims = await asyncio.gather(
        *(
            ledger.claim_alert(tenant_id="acme", threshold_pct=50, period="2026-11")
            for _ in range(8)
        )
    )

    assert sum(outcome.recorded for outcome in outcomes) == 40
    assert await ledger.spent(tenant_id="acme", period="2026-11") == sum(range(1, 41))
    assert max(outcome.period_total_micros for outcome in outcomes) == sum(range(1, 41))
    assert claims.count(True) == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ledger: ledger.record({"call_id": "x"}), ConfigError, "takes a CostEntry"),
        (
            lambda ledger: ledger.totals(tenant_id="acme", period="2026-13"),
            ConfigError,
            "YYYY-MM",
        ),
        (
            lambda ledger: ledger.spent(tenant_id="../etc", period="2026-11"),
            TenantError,
            "tenant_id",
        ),
        (
            lambda ledger: ledger.entries(tenant_id="acme", period="2026-11", limit=0),
            ConfigError,
            "limit",
        ),
        (
            lambda ledger: ledger.claim_alert(tenant_id="acme", threshold_pct=0, period="2026-11"),
            ConfigError,
            "threshold",
        ),
        (
            lambda ledger: ledger.claim_alert(tenant_id=7, threshold_pct=80, period="2026-11"),
            TenantError,
            "string or None",
        ),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    ledger: CostLedger, call: Callable[[Any], Any], error: type[Exception], message: str
) -> None:
    await ledger.record(entry())

    with pytest.raises(error, match=message):
        await call(ledger)

    assert await ledger.entries(tenant_id="acme", period="2026-11") == [entry()]
    assert await ledger.claim_alert(tenant_id="acme", threshold_pct=80, period="2026-11")


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"call_id": ""}, ConfigError, "call_id"),
        ({"call_id": "x" * 201}, ConfigError, "call_id"),
        ({"tenant_id": "a/b"}, TenantError, "tenant_id"),
        ({"model": None}, ConfigError, "model"),
        ({"agent": ""}, ConfigError, "agent"),
        ({"input_tokens": -1}, ConfigError, "input_tokens"),
        ({"output_tokens": 1.5}, ConfigError, "output_tokens"),
        ({"cost_micros": True}, ConfigError, "cost_micros"),
        ({"recorded_at": datetime(2026, 11, 5)}, ConfigError, "timezone-aware"),
        ({"period": "2026-10"}, ConfigError, "not the UTC month"),
    ],
)
def test_a_malformed_entry_cannot_be_built(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        entry(**changes)


def test_an_entry_is_kept_in_utc_and_dated_to_its_utc_month() -> None:
    tokyo = timezone(timedelta(hours=9))
    local = entry(recorded_at=datetime(2026, 12, 1, 8, 0, tzinfo=tokyo))  # still November in UTC

    assert local.period == "2026-11"
    assert local.recorded_at.tzinfo == UTC
    assert replace(local, period="").period == "2026-11"


async def test_postgres_rows_are_hidden_from_other_tenants_by_row_level_security(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    await migrate(database, "ledger", LEDGER_MIGRATIONS)
    ledger = await SqlCostLedger.open(database)
    await ledger.record(entry())
    await ledger.claim_alert(tenant_id="acme", threshold_pct=80, period="2026-11")

    for tenant in ("globex", ""):
        async with database.transaction(tenant_id=tenant) as connection:
            for table in ("entries", "totals", "alerts"):
                query = text(f"SELECT COUNT(*) FROM onionskin_cost_{table}")  # no WHERE at all
                assert (await connection.execute(query)).scalar_one() == 0
    async with database.transaction(tenant_id="acme") as connection:
        query = text("SELECT COUNT(*) FROM onionskin_cost_entries")
        assert (await connection.execute(query)).scalar_one() == 1


async def test_open_cost_ledger_picks_the_backend_by_url(tmp_path: Any) -> None:
    assert isinstance(await open_cost_ledger("memory://"), MemoryCostLedger)
    ledger = await open_cost_ledger(f"sqlite:///{tmp_path}/costs.db")
    try:
        assert isinstance(ledger, SqlCostLedger)
        assert (await ledger.record(entry())).recorded
    finally:
        await ledger.aclose()
    with pytest.raises(ConfigError, match="unsupported database URL scheme"):
        await open_cost_ledger("mysql://h/db")


async def test_postgres_refuses_a_ledger_whose_schema_is_behind(database_factory: Factory) -> None:
    database = database_factory("postgres")

    with pytest.raises(StoreError, match="onionskin db migrate"):
        await SqlCostLedger.open(database)


# --- batches ----------------------------------------------------------------------------------


async def test_a_batch_is_recorded_with_one_outcome_per_entry(ledger: CostLedger) -> None:
    await ledger.record(entry("old", cost_micros=100))
    batch = [
        entry("a", cost_micros=1),
        entry("old", cost_micros=100),  # already in the ledger
        entry("b", cost_micros=2, recorded_at=DEC),
        entry("a", cost_micros=1),  # twice in the batch
    ]

    outcomes = await ledger.record_many(batch)

    assert [o.recorded for o in outcomes] == [True, False, True, False]
    assert [o.entry.call_id for o in outcomes] == ["a", "old", "b", "a"]
    assert [o.period_total_micros for o in outcomes] == [101, 101, 2, 101]
    assert (await ledger.totals(tenant_id="acme", period="2026-11")).calls == 2
    assert await ledger.spent(tenant_id="acme", period="2026-12") == 2
    assert await ledger.record_many([]) == []


@pytest.mark.parametrize(
    "batch",
    [
        [entry("new"), entry("old", cost_micros=1)],  # conflicts with the ledger
        [entry("new"), entry("x"), entry("x", agent="other")],  # conflicts within the batch
    ],
)
async def test_a_batch_with_a_conflict_records_nothing(
    ledger: CostLedger, batch: list[CostEntry]
) -> None:
    await ledger.record(entry("old"))

    with pytest.raises(StoreError, match="different content"):
        await ledger.record_many(batch)

    assert [e.call_id for e in await ledger.entries(tenant_id="acme", period="2026-11")] == ["old"]
    assert await ledger.spent(tenant_id="acme", period="2026-11") == 7_500


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([entry("a"), entry("b", tenant_id="globex")], "one tenant"),
        ([entry(f"c{n}") for n in range(501)], "at most 500"),
        ([entry("a"), "b"], "CostEntry values"),
        (entry("a"), "a list"),
    ],
)
async def test_a_malformed_batch_is_refused_and_changes_nothing(
    ledger: CostLedger, batch: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        await ledger.record_many(batch)

    assert await ledger.entries(tenant_id="acme", period="2026-11") == []
    assert await ledger.entries(tenant_id="globex", period="2026-11") == []
