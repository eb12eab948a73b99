"""Many processes, one ledger: 8 workers record 10,000 calls on one SQLite file or PostgreSQL.

Each worker is a fresh process (spawn) with its own event loop and connections, so nothing
is shared but the database. A worker records its share in batches of ten (one transaction
each, as a flush would), and the first 50 calls of the next worker's share one by one: so
400 calls reach the ledger twice, from two processes, through both paths, and must count
once. The totals must equal the sum of the calls to the micro-dollar. Then four processes
spend one tenant's budget call by call together: each alert fires exactly once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.ledger import CostEntry
from onionskin.stores.sql_ledger import LEDGER_MIGRATIONS, SqlCostLedger
from onionskin.tenancy.cost import TenantCostTracker
from onionskin.testing import FakeClock
from tests.conftest import SQL_BACKENDS

WORKERS = 8
CALLS = 10_000
OVERLAP = 50  # each worker also records the first 50 calls of the next one
TASKS = 2  # concurrent recorders in each worker's loop
BATCH = 10
MOMENT = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
ALERT_WORKERS = 4
ALERT_CALLS = 25  # per worker: 100 calls of $1 against a $100 budget

Factory = Callable[[str], SqlDatabase]


def cost_of(number: int) -> int:
    """The micro-dollars of call `number`: varied, so a lost or doubled call shows."""
    return (number * 7919) % 100_003 + 1


def _entry(number: int) -> CostEntry:
    return CostEntry(
        call_id=f"call-{number}",
        tenant_id="acme",
        run_id=f"run-{number // 10}",
        agent=f"agent-{number % 3}",
        model=f"model-{number % 2}",
        input_tokens=number % 500,
        output_tokens=number % 300,
        cost_micros=cost_of(number),
        recorded_at=MOMENT,
    )


async def _record(url: str, schema: str | None, worker: int) -> int:
    ledger = await SqlCostLedger.open(url, schema=schema)
    share = CALLS // WORKERS
    mine = [worker * share + i for i in range(share)]
    batches = [mine[start : start + BATCH] for start in range(0, share, BATCH)]
    theirs = [((worker + 1) * share + i) % CALLS for i in range(OVERLAP)]
    recorded = 0

    async def recorder(task: int) -> None:
        nonlocal recorded
        for batch in batches[task::TASKS]:
            outcomes = await ledger.record_many([_entry(number) for number in batch])
            recorded += sum(outcome.recorded for outcome in outcomes)
        for number in theirs[task::TASKS]:
            outcome = await ledger.record(_entry(number))  # awaited before `recorded` is read
            recorded += outcome.recorded

    try:
        await asyncio.gather(*(recorder(task) for task in range(TASKS)))
    finally:
        await ledger.aclose()
    return recorded


async def _spend(url: str, schema: str | None, worker: int) -> list[int]:
    ledger = await SqlCostLedger.open(url, schema=schema)
    fired: list[int] = []
    tracker = TenantCostTracker(
        "budgeted",
        100,
        ledger=ledger,
        clock=FakeClock(MOMENT.timestamp()),
        alert_thresholds=(50, 80),
        on_alert=lambda _tenant, pct, _share: fired.append(pct),
    )
    try:
        for call in range(ALERT_CALLS):
            await tracker.record(
                model="m", input_tokens=1, output_tokens=1, cost_usd=1, call_id=f"w{worker}-{call}"
            )
    finally:
        await ledger.aclose()
    return fired


def _record_worker(url: str, schema: str | None, worker: int) -> tuple[int, int]:
    return os.getpid(), asyncio.run(_record(url, schema, worker))


def _spend_worker(url: str, schema: str | None, worker: int) -> tuple[int, list[int]]:
    return os.getpid(), asyncio.run(_spend(url, schema, worker))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """Eight worker processes for the whole module: each start-up is paid once."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as executor:
        yield executor


async def _prepare(
    backend: str, database_factory: Factory, request: pytest.FixtureRequest
) -> tuple[SqlDatabase, str, str | None]:
    """A fresh database with the ledger's schema, and the URL and schema workers open."""
    database = database_factory(backend)
    await migrate(database, "ledger", LEDGER_MIGRATIONS)  # as a deploy would
    # database.url hides any password: the workers need the real one.
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else database.url
    return database, url, database.schema


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_eight_processes_record_ten_thousand_calls_exactly_once(
    backend: str,
    database_factory: Factory,
    request: pytest.FixtureRequest,
    pool: ProcessPoolExecutor,
) -> None:
    database, url, schema = await _prepare(backend, database_factory, request)
    loop = asyncio.get_running_loop()
    results = await asyncio.gather(
        *(
            loop.run_in_executor(pool, _record_worker, url, schema, worker)
            for worker in range(WORKERS)
        )
    )

    assert len({pid for pid, _ in results}) > 1  # several processes wrote at once
    assert (
        sum(recorded for _, recorded in results) == CALLS
    )  # the 400 repeated call ids were each recorded once
    ledger = SqlCostLedger(database)
    expected = sum(cost_of(number) for number in range(CALLS))
    totals = await ledger.totals(tenant_id="acme", period="2026-11")
    assert totals.calls == CALLS
    assert totals.total_micros == expected
    assert await ledger.spent(tenant_id="acme", period="2026-11") == expected
    assert sum(totals.by_agent.values()) == sum(totals.by_model.values()) == expected
    assert totals.by_model["model-0"] == sum(cost_of(n) for n in range(0, CALLS, 2))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_an_alert_fires_once_across_four_processes(
    backend: str,
    database_factory: Factory,
    request: pytest.FixtureRequest,
    pool: ProcessPoolExecutor,
) -> None:
    database, url, schema = await _prepare(backend, database_factory, request)
    loop = asyncio.get_running_loop()
    results = await asyncio.gather(
        *(
            loop.run_in_executor(pool, _spend_worker, url, schema, worker)
            for worker in range(ALERT_WORKERS)
        )
    )

    assert len({pid for pid, _ in results}) > 1
    assert sorted(pct for _, fired in results for pct in fired) == [50, 80]
    spent = await SqlCostLedger(database).spent(tenant_id="budgeted", period="2026-11")
    assert spent == ALERT_WORKERS * ALERT_CALLS * 1_000_000
    assert Decimal(spent) / 1_000_000 == Decimal(100)
