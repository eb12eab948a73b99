"""One contract for every approval queue: memory, SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from onionskin.core.errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ConfigError,
    StoreError,
    TenantError,
)
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.approvals import (
    ApprovalQueue,
    MemoryApprovalQueue,
)
from onionskin.stores.sql_approvals import (
    APPROVAL_MIGRATIONS,
    SqlApprovalQueue,
    open_approval_queue,
)
from onionskin.testing import FakeClock

START = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

Factory = Callable[[str], SqlDatabase]


@dataclass
class Backend:
    queue: ApprovalQueue
    clock: FakeClock


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(
    request: pytest.FixtureRequest, database_factory: Factory
) -> AsyncIterator[Backend]:
    clock = FakeClock(START.timestamp())
    if request.param == "memory":
        yield Backend(MemoryApprovalQueue(clock=clock), clock)
        return
    database = database_factory(request.param)
    await migrate(database, "approvals", APPROVAL_MIGRATIONS)  # as a deploy would
    yield Backend(await SqlApprovalQueue.open(database, clock=clock), clock)


async def submit(queue: ApprovalQueue, tenant_id: str | None = "acme", **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "tenant_id": tenant_id,
        "run_id": "run-1",
        "reason": "monthly budget spent",
        "amount_micros": 12_000,
        "checkpoint_id": "cp-7",
    }
    fields.update(changes)
    return await queue.submit(**fields)


async def test_a_submitted_request_is_pending_and_can_be_read_back(backend: Backend) -> None:
    request = await submit(backend.queue)

    assert request.status == "pending"
    assert request.created_at == START
    assert (request.decided_at, request.decided_by) == (None, None)
    assert await backend.queue.get(request.approval_id, tenant_id="acme") == request
    assert await backend.queue.list(tenant_id="acme") == [request]
    assert await backend.queue.list(tenant_id="acme", status="pending") == [request]
    assert await backend.queue.list(tenant_id="acme", status="approved") == []


async def test_an_approval_is_recorded_with_its_operator_and_time(backend: Backend) -> None:
    request = await submit(backend.queue)
    backend.clock.advance(90)

    approved = await backend.queue.approve(request.approval_id, tenant_id="acme", operator="ops")

    assert approved.status == "approved"
    assert approved.decided_by == "ops"
    assert approved.decided_at == datetime.fromtimestamp(START.timestamp() + 90, UTC)
    assert (approved.reason, approved.amount_micros, approved.checkpoint_id) == (
        "monthly budget spent",
        12_000,
        "cp-7",
    )
    assert await backend.queue.get(request.approval_id, tenant_id="acme") == approved


@pytest.mark.parametrize("first", ["approve", "deny"])
async def test_a_request_is_decided_exactly_once(backend: Backend, first: str) -> None:
    request = await submit(backend.queue)
    decided = await getattr(backend.queue, first)(
        request.approval_id, tenant_id="acme", operator="alice"
    )

    for second in ("approve", "deny"):
        with pytest.raises(ApprovalDecidedError, match="already") as caught:
            await getattr(backend.queue, second)(
                request.approval_id, tenant_id="acme", operator="bob"
            )
        assert caught.value.status == decided.status

    assert await backend.queue.get(request.approval_id, tenant_id="acme") == decided
    assert decided.status == ("approved" if first == "approve" else "denied")


async def test_concurrent_decisions_let_exactly_one_through(backend: Backend) -> None:
    request = await submit(backend.queue)

    async def decide(index: int) -> str | None:
        act = backend.queue.approve if index % 2 else backend.queue.deny
        try:
            return (await act(request.approval_id, tenant_id="acme", operator=f"op{index}")).status
        except ApprovalDecidedError:
            return None

    outcomes = await asyncio.gather(*(decide(index) for index in range(10)))

    assert len([outcome for outcome in outcomes if outcome is not None]) == 1
    stored = await backend.queue.get(request.approval_id, tenant_id="acme")
    assert stored is not None
    assert stored.status in outcomes


async def test_other_tenants_can_neither_see_nor_decide_a_request(backend: Backend) -> None:
    request = await submit(backend.queue, "acme")
    theirs = await submit(backend.queue, "globex", run_id="run-1")

    assert await backend.queue.get(request.approval_id, tenant_id="globex") is None
    assert await backend.queue.get(request.approval_id, tenant_id=None) is None
    assert await backend.queue.list(tenant_id="globex") == [theirs]
    assert await backend.queue.list(tenant_id=None) == []
    for act in (backend.queue.approve, backend.queue.deny):
        with pytest.raises(ApprovalNotFoundError, match="for tenant 'globex'"):
            await act(request.approval_id, tenant_id="globex", operator="mallory")
    assert await backend.queue.get(request.approval_id, tenant_id="acme") == request


async def test_requests_without_a_tenant_are_their_own_partition(backend: Backend) -> None:
    request = await submit(backend.queue, None, run_id=None, checkpoint_id=None)

    assert await backend.queue.list(tenant_id=None) == [request]
    assert await backend.queue.list(tenant_id="acme") == []
    denied = await backend.queue.deny(request.approval_id, tenant_id=None, operator="ops")
    assert denied.status == "denied"


async def test_list_filters_by_status_and_run_oldest_first(backend: Backend) -> None:
    first = await submit(backend.queue, run_id="run-1")
    backend.clock.advance(1)
    second = await submit(backend.queue, run_id="run-2")
    backend.clock.advance(1)
    third = await submit(backend.queue, run_id="run-1")
    await backend.queue.approve(second.approval_id, tenant_id="acme", operator="ops")

    listed = await backend.queue.list(tenant_id="acme")
    assert [r.approval_id for r in listed] == [a.approval_id for a in (first, second, third)]
    assert await backend.queue.list(tenant_id="acme", run_id="run-1") == [first, third]
    pending = await backend.queue.list(tenant_id="acme", status="pending", run_id="run-1", limit=1)
    assert pending == [first]


async def test_an_unknown_request_is_not_found(backend: Backend) -> None:
    assert await backend.queue.get("nope", tenant_id="acme") is None
    with pytest.raises(ApprovalNotFoundError, match="no approval request 'nope'"):
        await backend.queue.approve("nope", tenant_id="acme", operator="ops")


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"reason": ""}, ConfigError, "reason"),
        ({"reason": "x" * 2001}, ConfigError, "reason"),
        ({"amount_micros": -1}, ConfigError, "amount_micros"),
        ({"amount_micros": 0.5}, ConfigError, "amount_micros"),
        ({"run_id": ""}, ConfigError, "run_id"),
        ({"checkpoint_id": 3}, ConfigError, "checkpoint_id"),
        ({"tenant_id": "no spaces"}, TenantError, "tenant_id"),
    ],
)
async def test_a_malformed_request_is_refused_and_nothing_is_stored(
    backend: Backend, changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await submit(backend.queue, **changes)

    assert await backend.queue.list(tenant_id="acme") == []


async def test_bad_lookups_and_decisions_are_refused(backend: Backend) -> None:
    request = await submit(backend.queue)
    queue = backend.queue

    with pytest.raises(ConfigError, match="operator"):
        await queue.approve(request.approval_id, tenant_id="acme", operator="")
    with pytest.raises(ConfigError, match="approval_id"):
        await queue.get("", tenant_id="acme")
    with pytest.raises(ConfigError, match="status"):
        await queue.list(tenant_id="acme", status="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="limit"):
        await queue.list(tenant_id="acme", limit=1001)
    with pytest.raises(TenantError):
        await queue.deny(request.approval_id, tenant_id="../acme", operator="ops")

    assert await queue.get(request.approval_id, tenant_id="acme") == request


def test_decision_errors_are_store_errors_that_survive_pickling() -> None:
    for error in (ApprovalDecidedError("a1", "approved"), ApprovalNotFoundError("a1", "acme")):
        assert isinstance(error, StoreError)
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy)) == (type(error), str(error))


async def test_postgres_requests_are_hidden_by_row_level_security(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    await migrate(database, "approvals", APPROVAL_MIGRATIONS)
    queue = await SqlApprovalQueue.open(database)
    await submit(queue)

    for tenant in ("globex", ""):
        async with database.transaction(tenant_id=tenant) as connection:
            query = text("SELECT COUNT(*) FROM onionskin_approvals")  # no WHERE at all
            assert (await connection.execute(query)).scalar_one() == 0
            changed = await connection.execute(
                text("UPDATE onionskin_approvals SET status='denied'")
            )
            assert changed.rowcount == 0
    assert (await queue.list(tenant_id="acme"))[0].status == "pending"


async def test_open_approval_queue_picks_the_backend_by_url(tmp_path: Any) -> None:
    assert isinstance(await open_approval_queue("memory://"), MemoryApprovalQueue)
    queue = await open_approval_queue(f"sqlite:///{tmp_path}/approvals.db")
    try:
        assert isinstance(queue, SqlApprovalQueue)
        assert (await submit(queue)).status == "pending"
    finally:
        await queue.aclose()
