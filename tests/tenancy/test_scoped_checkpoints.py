"""Tenant isolation of checkpoints (seed 000): tenant B never reaches tenant A's runs.

Every test runs on memory, SQLite and PostgreSQL. B tries A's real run and checkpoint ids
(as if guessed or leaked) and crafted ones; the untenanted partition is a third, separate
one. On PostgreSQL, raw SQL as the tenant role shows that row-level security hides A's rows
even from a query that forgets the tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import text

from onionskin.core.errors import StoreError, TenantError
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.checkpoints import Checkpoint, CheckpointStore, MemoryCheckpointStore
from onionskin.stores.sql_checkpoints import CHECKPOINT_MIGRATIONS, SqlCheckpointStore
from onionskin.tenancy.checkpoints import ScopedCheckpointStore, TenantScopedCheckpointStore
from tests.contract.test_checkpoint_store import BACKENDS, make, open_store

Factory = Callable[[str], SqlDatabase]


@dataclass
class World:
    """A base store holding a run of tenant A and an untenanted run, and three scoped views."""

    base: CheckpointStore
    a: TenantScopedCheckpointStore
    b: TenantScopedCheckpointStore
    nobody: TenantScopedCheckpointStore
    a_run: list[Checkpoint]
    untenanted: Checkpoint

    async def assert_a_untouched(self) -> None:
        assert await self.a.get_checkpoints("run-a") == self.a_run
        assert [run.run_id for run in await self.a.list_runs()] == ["run-a"]
        assert await self.nobody.get_checkpoints("run-free") == [self.untenanted]


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, database_factory: Factory) -> AsyncIterator[World]:
    base = await open_store(request.param, database_factory)

    def scoped(tenant: str | None) -> TenantScopedCheckpointStore:
        return TenantScopedCheckpointStore(base_store=base, tenant_id=tenant)

    a = scoped("org_a")
    a_run = [make("run-a", step, tenant_id="org_a", state={"secret": step}) for step in range(3)]
    for checkpoint in a_run:
        await a.save_checkpoint(checkpoint)
    untenanted = make("run-free", 0)
    await base.save_checkpoint(untenanted)
    yield World(base, a, scoped("org_b"), scoped(None), a_run, untenanted)
    await base.aclose()


async def test_b_cannot_read_a_runs_through_their_real_ids(world: World) -> None:
    b = world.b
    assert await b.get_checkpoints("run-a") == []
    assert await b.latest_checkpoint("run-a") is None
    for checkpoint in world.a_run:
        assert await b.get_checkpoint(checkpoint.checkpoint_id) is None
    assert await b.list_runs() == []
    assert await b.list_runs(limit=1000) == []
    await world.assert_a_untouched()


async def test_b_cannot_delete_a_runs(world: World) -> None:
    assert await world.b.delete_checkpoints("run-a") == 0
    assert await world.b.delete_checkpoints("run-free") == 0
    await world.assert_a_untouched()


async def test_b_cannot_overwrite_a_checkpoint_and_learns_no_owner(world: World) -> None:
    stolen = world.a_run[1]
    for attempt in (replace(stolen, tenant_id=None), replace(stolen, tenant_id="org_b")):
        with pytest.raises(StoreError, match="already exists") as caught:
            await world.b.save_checkpoint(replace(attempt, state={"secret": "overwritten"}))
        assert "org_a" not in str(caught.value)
        assert "run-a" not in str(caught.value)
    assert await world.b.get_checkpoint(stolen.checkpoint_id) is None
    await world.assert_a_untouched()


async def test_b_saving_under_a_run_id_leaves_a_run_alone(world: World) -> None:
    mine = [make("run-a", step) for step in range(5)]
    for checkpoint in mine:
        await world.b.save_checkpoint(checkpoint)

    assert await world.b.get_checkpoints("run-a") == [replace(c, tenant_id="org_b") for c in mine]
    [summary] = await world.b.list_runs()
    assert (summary.run_id, summary.tenant_id, summary.checkpoints) == ("run-a", "org_b", 5)
    await world.assert_a_untouched()
    assert await world.a.latest_checkpoint("run-a") == world.a_run[-1]

    assert await world.b.delete_checkpoints("run-a") == 5
    await world.assert_a_untouched()


CRAFTED = [
    "' OR '1'='1",
    "run-a' OR tenant_id <> '",
    "run-a'; DELETE FROM onionskin_checkpoints; --",
    "%",
    "run-%",
    "_un-a",
    "*",
    "RUN-A",
    " run-a",
    "run-a ",
    "org_a:run-a",
    "org_a/run-a",
    "../org_a/run-a",
    "run-a\\",
    "🧅",
]


async def test_crafted_ids_find_nothing_and_change_nothing(world: World) -> None:
    for crafted in CRAFTED:
        for store in (world.b, world.nobody):
            assert await store.get_checkpoints(crafted) == []
            assert await store.latest_checkpoint(crafted) is None
            assert await store.get_checkpoint(crafted) is None
            assert await store.delete_checkpoints(crafted) == 0
    await world.assert_a_untouched()


async def test_malformed_ids_are_refused_and_change_nothing(world: World) -> None:
    for malformed in ("", "run-a\x00", "\x00", "run-a\n", "x" * 256):
        with pytest.raises(StoreError, match="must be a non-empty string"):
            await world.b.get_checkpoints(malformed)
        with pytest.raises(StoreError, match="must be a non-empty string"):
            await world.b.delete_checkpoints(malformed)
        with pytest.raises(StoreError, match="must be a non-empty string"):
            await world.b.get_checkpoint(malformed)
    await world.assert_a_untouched()


async def test_saving_tags_the_checkpoint_with_the_scoped_tenant(world: World) -> None:
    untagged = make("run-b", 0)
    await world.b.save_checkpoint(untagged)

    tagged = await world.base.get_checkpoint(untagged.checkpoint_id, tenant_id="org_b")
    assert tagged == replace(untagged, tenant_id="org_b")
    assert await world.base.get_checkpoint(untagged.checkpoint_id, tenant_id=None) is None
    assert await world.b.get_checkpoint(untagged.checkpoint_id) == tagged


async def test_a_checkpoint_naming_another_tenant_is_refused(world: World) -> None:
    forged = make("run-x", 0, tenant_id="org_a")
    with pytest.raises(TenantError, match="names tenant 'org_a' but this store is scoped to"):
        await world.b.save_checkpoint(forged)
    with pytest.raises(TenantError, match="scoped to None"):
        await world.nobody.save_checkpoint(forged)

    assert await world.base.get_checkpoint(forged.checkpoint_id, tenant_id="org_a") is None
    assert await world.b.list_runs() == []
    await world.assert_a_untouched()


async def test_the_untenanted_partition_is_separate(world: World) -> None:
    for store in (world.a, world.b):
        assert await store.get_checkpoints("run-free") == []
        assert await store.get_checkpoint(world.untenanted.checkpoint_id) is None
        assert await store.delete_checkpoints("run-free") == 0
    assert [run.run_id for run in await world.nobody.list_runs()] == ["run-free"]
    assert await world.nobody.get_checkpoints("run-a") == []
    assert await world.base.list_runs(tenant_id=None) == await world.nobody.list_runs()
    await world.assert_a_untouched()


async def test_a_malformed_tenant_is_refused() -> None:
    base = MemoryCheckpointStore()
    for tenant in ("", "../org_a", "org a", "org_a\x00", "x" * 129, "-org"):
        with pytest.raises(TenantError, match="tenant_id must be 1-128 characters"):
            TenantScopedCheckpointStore(base_store=base, tenant_id=tenant)


async def test_the_scoped_store_is_a_scoped_checkpoint_store(world: World) -> None:
    assert isinstance(world.a, ScopedCheckpointStore)
    assert world.a.tenant_id == "org_a"
    assert world.nobody.tenant_id is None
    assert world.a.base_store is world.base
    assert repr(world.b) == "TenantScopedCheckpointStore(tenant_id='org_b')"
    with pytest.raises(StoreError, match="limit must be"):
        await world.a.list_runs(limit=0)


async def _postgres_world(
    database_factory: Factory,
) -> tuple[SqlDatabase, TenantScopedCheckpointStore, TenantScopedCheckpointStore]:
    database = database_factory("postgres")
    await migrate(database, "checkpoints", CHECKPOINT_MIGRATIONS)
    store = await SqlCheckpointStore.open(database)
    a = TenantScopedCheckpointStore(base_store=store, tenant_id="org_a")
    b = TenantScopedCheckpointStore(base_store=store, tenant_id="org_b")
    for step in range(3):
        await a.save_checkpoint(make("run-a", step))
    await b.save_checkpoint(make("run-b", 0))
    return database, a, b


async def test_raw_sql_without_a_tenant_sees_no_rows(database_factory: Factory) -> None:
    database, _, _ = await _postgres_world(database_factory)
    async with database.transaction() as connection:
        await connection.exec_driver_sql("SET LOCAL ROLE onionskin_tenant")
        rows = (await connection.execute(text("SELECT * FROM onionskin_checkpoints"))).all()
    assert rows == []


async def test_raw_sql_as_b_sees_none_of_a_rows(database_factory: Factory) -> None:
    database, _, _ = await _postgres_world(database_factory)
    async with database.transaction(tenant_id="org_b") as connection:
        rows = (
            await connection.execute(text("SELECT tenant_id, run_id FROM onionskin_checkpoints"))
        ).all()
        changed = await connection.execute(
            text("UPDATE onionskin_checkpoints SET state = '{}' WHERE tenant_id = 'org_a'")
        )
        deleted = await connection.execute(text("DELETE FROM onionskin_checkpoints"))
    assert [tuple(row) for row in rows] == [("org_b", "run-b")]
    assert (changed.rowcount, deleted.rowcount) == (0, 1)
    async with database.transaction() as connection:  # the owner, for the count only
        count = await connection.execute(
            text("SELECT count(*) FROM onionskin_checkpoints WHERE tenant_id = 'org_a'")
        )
        assert count.scalar_one() == 3


async def test_raw_sql_as_b_cannot_insert_a_row_for_a(database_factory: Factory) -> None:
    database, a, _ = await _postgres_world(database_factory)
    forged = make("run-a", 9)

    async def insert_as_b() -> None:
        async with database.transaction(tenant_id="org_b", write=True) as connection:
            await connection.execute(
                text(
                    "INSERT INTO onionskin_checkpoints (checkpoint_id, tenant_id, run_id, "
                    "pipeline_id, step, kind, status, state, messages, data, created_at) "
                    "VALUES (:id, 'org_a', 'run-a', 'p', 9, 'model', 'running', '{}', '[]', "
                    "'{}', now())"
                ),
                {"id": forged.checkpoint_id},
            )

    with pytest.raises(StoreError, match="row-level security"):
        await insert_as_b()
    assert [c.step for c in await a.get_checkpoints("run-a")] == [0, 1, 2]
