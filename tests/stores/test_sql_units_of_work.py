"""`SqlDatabase.read` / `write`: a store's unit of work, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from onionskin.core.errors import StoreError
from onionskin.stores._migrations import Migration, migrate, tenant_table_policy
from onionskin.stores._rows import Rows, Statements, placeholders
from onionskin.stores._sql import SqlDatabase
from tests.conftest import SQL_BACKENDS

Factory = Callable[[str], SqlDatabase]

NOTES = (
    Migration(
        version=1,
        name="notes",
        sqlite=["CREATE TABLE notes (tenant_id TEXT NOT NULL, body TEXT PRIMARY KEY)"],
        postgresql=[
            "CREATE TABLE notes (tenant_id TEXT NOT NULL, body TEXT PRIMARY KEY)",
            *tenant_table_policy("notes"),
        ],
    ),
)
INSERT = "INSERT INTO notes (tenant_id, body) VALUES (:t, :b)"
BODIES = "SELECT body FROM notes WHERE tenant_id = :t ORDER BY body"


async def _notes(database: Factory, backend: str) -> SqlDatabase:
    db = database(backend)
    await migrate(db, "notes", NOTES)
    return db


def _insert(tenant: str, body: str) -> Callable[[Statements], Rows]:
    return lambda s: s.execute(INSERT, {"t": tenant, "b": body})


def _bodies(db: SqlDatabase, tenant: str) -> Callable[[Statements], list[str]]:
    del db
    return lambda s: [body for (body,) in s.execute(BODIES, {"t": tenant})]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_write_commits_and_returns_what_its_work_returns(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)

    def insert(s: Statements) -> int:
        return s.execute(INSERT, {"t": "acme", "b": "first"}).rowcount

    assert await db.write(insert, tenant_id="acme") == 1
    assert await db.read(_bodies(db, "acme"), tenant_id="acme") == ["first"]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_work_that_raises_changes_nothing_and_its_error_comes_back_unchanged(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)

    def insert_then_fail(s: Statements) -> None:
        s.execute(INSERT, {"t": "acme", "b": "lost"})
        raise ValueError("the store's own check failed")

    with pytest.raises(ValueError, match="own check failed"):
        await db.write(insert_then_fail, tenant_id="acme")
    assert await db.read(_bodies(db, "acme"), tenant_id="acme") == []


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_driver_error_is_a_store_error_and_undoes_the_work(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)
    await db.write(lambda s: s.execute(INSERT, {"t": "acme", "b": "taken"}), tenant_id="acme")

    def insert_two(s: Statements) -> None:
        s.execute(INSERT, {"t": "acme", "b": "new"})
        s.execute(INSERT, {"t": "acme", "b": "taken"})  # the primary key is taken

    with pytest.raises(StoreError, match="store failed"):
        await db.write(insert_two, tenant_id="acme")
    assert await db.read(_bodies(db, "acme"), tenant_id="acme") == ["taken"]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_concurrent_writes_each_keep_or_lose_only_their_own_rows(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)

    def insert(n: int) -> Callable[[Statements], int]:
        def work(s: Statements) -> int:
            s.execute(INSERT, {"t": "acme", "b": f"note-{n:02d}"})
            if n % 5 == 0:
                raise ValueError(f"job {n} refused")
            return n

        return work

    outcomes = await asyncio.gather(
        *(db.write(insert(n), tenant_id="acme") for n in range(40)), return_exceptions=True
    )
    for n, outcome in enumerate(outcomes):
        if n % 5 == 0:
            assert isinstance(outcome, ValueError)
            assert str(outcome) == f"job {n} refused"
        else:
            assert outcome == n
    kept = await db.read(_bodies(db, "acme"), tenant_id="acme")
    assert kept == [f"note-{n:02d}" for n in range(40) if n % 5]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_rows_give_mappings_scalars_and_the_first_row(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)
    for body in ("a", "b"):
        await db.write(_insert("acme", body), tenant_id="acme")

    def look(s: Statements) -> tuple[Rows, Rows, Rows]:
        return (
            s.execute(BODIES, {"t": "acme"}),
            s.execute("SELECT count(*) AS n FROM notes WHERE tenant_id = :t", {"t": "acme"}),
            s.execute(BODIES, {"t": "nobody"}),
        )

    bodies, count, empty = await db.read(look, tenant_id="acme")
    assert bodies.mappings() == [{"body": "a"}, {"body": "b"}]
    assert bodies.first() == ("a",)
    assert bodies.all() == [("a",), ("b",)]
    assert count.scalar_one() == 2
    assert count.scalar() == 2
    assert empty.first() is None
    assert empty.scalar() is None
    with pytest.raises(StoreError, match="exactly one row, got 0"):
        empty.scalar_one()
    with pytest.raises(StoreError, match="exactly one row, got 2"):
        bodies.scalar_one()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_placeholders_expand_an_in_list_on_both_drivers(
    backend: str, database_factory: Factory
) -> None:
    db = await _notes(database_factory, backend)
    for body in ("a", "b", "c"):
        await db.write(_insert("acme", body), tenant_id="acme")
    names, params = placeholders("body", ["a", "c", "it's; DROP TABLE notes"])
    assert names == ":body0, :body1, :body2"
    sql = f"SELECT body FROM notes WHERE tenant_id = :t AND body IN ({names}) ORDER BY body"
    found = await db.read(lambda s: s.execute(sql, {"t": "acme", **params}).all())
    assert found == [("a",), ("c",)]


async def test_postgres_units_of_work_run_under_the_tenants_row_level_security(
    database_factory: Factory,
) -> None:
    db = await _notes(database_factory, "postgres")
    await db.write(lambda s: s.execute(INSERT, {"t": "acme", "b": "acme's"}), tenant_id="acme")
    # No WHERE clause: the policy alone hides acme's row from globex.
    every_body = "SELECT body FROM notes"
    assert await db.read(lambda s: s.execute(every_body).all(), tenant_id="globex") == []
    assert await db.read(lambda s: s.execute(every_body).all(), tenant_id="acme") == [("acme's",)]
    with pytest.raises(StoreError, match="row-level security"):
        await db.write(lambda s: s.execute(INSERT, {"t": "acme", "b": "x"}), tenant_id="globex")
