"""The SQL foundation: URLs, transactions, migrations and row-level security."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from onionskin.core.errors import ConfigError, StoreError
from onionskin.stores._migrations import Migration, ensure_schema, migrate, tenant_table_policy
from onionskin.stores._sql import SqlDatabase, normalize_url
from onionskin.stores.sql_checkpoints import SqlCheckpointStore
from tests.conftest import SQL_BACKENDS

Factory = Callable[[str], SqlDatabase]

NOTES = (
    Migration(
        version=1,
        name="notes",
        sqlite=["CREATE TABLE notes (tenant_id TEXT NOT NULL, body TEXT NOT NULL)"],
        postgresql=[
            "CREATE TABLE notes (tenant_id TEXT NOT NULL, body TEXT NOT NULL)",
            *tenant_table_policy("notes"),
        ],
    ),
    Migration(
        version=2,
        name="notes.rank",
        sqlite=["ALTER TABLE notes ADD COLUMN rank INTEGER NOT NULL DEFAULT 0"],
        postgresql=["ALTER TABLE notes ADD COLUMN rank INTEGER NOT NULL DEFAULT 0"],
    ),
)


@pytest.mark.parametrize(
    ("url", "dialect", "driver"),
    [
        ("sqlite:///x/y.db", "sqlite", "sqlite+aiosqlite:///x/y.db"),
        ("postgres://u:p@h/db", "postgresql", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql", "postgresql+psycopg://u@h:5433/db"),
    ],
)
def test_urls_select_the_async_driver(url: str, dialect: str, driver: str) -> None:
    assert normalize_url(url) == (dialect, driver)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db", "unsupported database URL scheme 'mysql'"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SqlDatabase(url)


def test_the_url_shown_hides_the_password() -> None:
    assert SqlDatabase("postgresql://u:secret@h/db").url == "postgresql://u:***@h/db"


def test_schema_needs_postgres_and_a_plain_name(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="schema="):
        SqlDatabase(f"sqlite:///{tmp_path}/a.db", schema="s")
    with pytest.raises(ConfigError, match="schema="):
        SqlDatabase("postgresql://u@h/db", schema='x"; DROP')


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_migrations_run_once_in_order(backend: str, database_factory: Factory) -> None:
    database = database_factory(backend)
    assert await migrate(database, "notes", NOTES[:1]) == [1]
    assert await migrate(database, "notes", NOTES) == [2]
    assert await migrate(database, "notes", NOTES) == []
    async with database.transaction(write=True, tenant_id="acme") as connection:
        await connection.execute(text("INSERT INTO notes (tenant_id, body) VALUES ('acme', 'x')"))
        rank = (await connection.execute(text("SELECT rank FROM notes"))).scalar_one()
    assert rank == 0


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_concurrent_migrations_apply_each_step_once(
    backend: str, database_factory: Factory
) -> None:
    database = database_factory(backend)
    runs = await asyncio.gather(*(migrate(database, "notes", NOTES) for _ in range(4)))
    assert sorted(version for run in runs for version in run) == [1, 2]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_database_from_a_newer_version_is_refused(
    backend: str, database_factory: Factory
) -> None:
    database = database_factory(backend)
    await migrate(database, "notes", NOTES)
    with pytest.raises(StoreError, match=r"migrations \[2\] this onionskin does not know"):
        await migrate(database, "notes", NOTES[:1])


def test_migrations_must_be_numbered_without_gaps() -> None:
    database = SqlDatabase("postgresql://u@h/db")
    with pytest.raises(ConfigError, match=r"numbered 1..n, got \[2\]"):
        asyncio.run(migrate(database, "notes", NOTES[1:]))


async def test_postgres_stores_refuse_a_schema_that_is_behind(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    with pytest.raises(StoreError, match="run `onionskin db migrate"):
        await ensure_schema(database, "notes", NOTES)
    await migrate(database, "notes", NOTES)
    await ensure_schema(database, "notes", NOTES)


async def test_sqlite_stores_migrate_on_open(database_factory: Factory) -> None:
    database = database_factory("sqlite")
    await ensure_schema(database, "notes", NOTES)
    async with database.transaction() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one()
    assert count == 0


async def test_a_failed_transaction_changes_nothing(database_factory: Factory) -> None:
    database = database_factory("sqlite")
    await migrate(database, "notes", NOTES)

    async def insert_then_fail() -> None:
        async with database.transaction(write=True) as connection:
            await connection.execute(text("INSERT INTO notes (tenant_id, body) VALUES ('a', 'x')"))
            await connection.execute(text("INSERT INTO missing VALUES (1)"))

    with pytest.raises(StoreError, match="sqlite store failed"):
        await insert_then_fail()
    async with database.transaction() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one()
    assert count == 0


async def test_row_level_security_shows_each_tenant_only_its_rows(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    await migrate(database, "notes", NOTES)
    for tenant in ("acme", "globex"):
        async with database.transaction(write=True, tenant_id=tenant) as connection:
            await connection.execute(
                text("INSERT INTO notes (tenant_id, body) VALUES (:t, :b)"),
                {"t": tenant, "b": f"{tenant}'s note"},
            )
    async with database.transaction(tenant_id="acme") as connection:
        # No WHERE clause: the policy alone filters.
        bodies = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
    assert bodies == ["acme's note"]


async def test_row_level_security_refuses_writes_for_another_tenant(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    await migrate(database, "notes", NOTES)

    async def insert_for_another_tenant() -> None:
        async with database.transaction(write=True, tenant_id="acme") as connection:
            await connection.execute(text("INSERT INTO notes (tenant_id, body) VALUES ('b', 'x')"))

    with pytest.raises(StoreError, match="row-level security"):
        await insert_for_another_tenant()


async def test_a_raw_query_without_the_tenant_setting_sees_no_rows(
    database_factory: Factory,
) -> None:
    database = database_factory("postgres")
    await migrate(database, "notes", NOTES)
    async with database.transaction(write=True, tenant_id="acme") as connection:
        await connection.execute(text("INSERT INTO notes (tenant_id, body) VALUES ('acme', 'x')"))
    async with database.transaction() as connection:
        # The owner connection, as the tenant role, but no tenant set: RLS hides every row.
        await connection.exec_driver_sql("SET LOCAL ROLE onionskin_tenant")
        count = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one()
    assert count == 0


async def test_many_databases_opening_one_new_sqlite_file_together_all_succeed(
    tmp_path: Path,
) -> None:
    """`serve --workers 2` on a new file: the WAL switch must not fail one of them."""

    async def open_one(path: Path) -> str:
        database = SqlDatabase(f"sqlite:///{path}")
        try:
            await SqlCheckpointStore.open(database)
            async with database.transaction() as connection:
                mode = await connection.exec_driver_sql("PRAGMA journal_mode")
                return str(mode.scalar_one())
        finally:
            await database.aclose()

    # A race: before the fix about one round in twenty lost one opener to "locked".
    for round_number in range(40):
        path = tmp_path / f"new-{round_number}.db"
        modes = await asyncio.gather(*(open_one(path) for _ in range(4)))
        assert modes == ["wal"] * 4
