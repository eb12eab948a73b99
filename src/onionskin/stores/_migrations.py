"""Versioned schema migrations for the SQL stores, one numbered list per component.

Each store component (checkpoints, cost ledger, tenant config, ...) owns an ordered tuple of
`Migration`s; the table `onionskin_schema_migrations` records which ran, per component, so
components evolve independently and two of them never fight over a version number.
SQLite applies pending migrations when a store opens; PostgreSQL applies them only through
`onionskin db migrate` (a deploy step, run by a role that may create tables and policies),
and a store that finds its schema behind refuses to start, naming that command.

Written here rather than with Alembic: the stores need a few dozen lines of ordered DDL per
dialect, applied atomically under a lock, not autogeneration or an ORM model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from onionskin.core.errors import ConfigError, StoreError
from onionskin.stores._sql import TENANT_ROLE, TENANT_SETTING, SqlDatabase

_LEDGER = """
CREATE TABLE IF NOT EXISTS onionskin_schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version)
)"""

# Serialises concurrent `migrate` runs on one PostgreSQL database (any fixed 64-bit key).
_PG_LOCK_KEY = 0x6F6E696F6E736B6E


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema step: the statements to run on each dialect, in order."""

    version: int
    """1, 2, 3, ... without gaps, per component."""
    name: str
    """What the step does, recorded with it."""
    sqlite: Sequence[str] = ()
    postgresql: Sequence[str] = ()


def tenant_table_policy(table: str) -> tuple[str, ...]:
    """PostgreSQL statements that put `table` behind row-level security by `tenant_id`.

    FORCE makes the policy bind the table's owner too; the tenant role gets plain DML
    rights and sees, inserts and changes only rows of the tenant set in its transaction.
    """
    setting = f"current_setting('{TENANT_SETTING}', true)"
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {table}_tenant ON {table}",
        f"CREATE POLICY {table}_tenant ON {table} USING (tenant_id = {setting}) "
        f"WITH CHECK (tenant_id = {setting})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {TENANT_ROLE}",
    )


_PG_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
        CREATE ROLE {TENANT_ROLE} NOLOGIN NOBYPASSRLS;
    END IF;
END
$$"""


def _check_sequence(component: str, migrations: Sequence[Migration]) -> None:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ConfigError(f"{component} migrations must be numbered 1..n, got {versions}")


async def _applied(connection: AsyncConnection, component: str) -> dict[int, str]:
    rows = await connection.execute(
        text("SELECT version, name FROM onionskin_schema_migrations WHERE component = :c"),
        {"c": component},
    )
    return {int(version): str(name) for version, name in rows}


def _pending(
    component: str, migrations: Sequence[Migration], applied: dict[int, str]
) -> list[Migration]:
    unknown = sorted(set(applied) - {migration.version for migration in migrations})
    if unknown:
        raise StoreError(
            f"the database has {component} migrations {unknown} this onionskin does not know: "
            "it was migrated by a newer version; upgrade onionskin"
        )
    return [migration for migration in migrations if migration.version not in applied]


async def _prepare_postgres(connection: AsyncConnection) -> None:
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    await connection.exec_driver_sql(_PG_ROLE)
    # The tenant role must reach the tables in whichever schema they live in.
    schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
    await connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {TENANT_ROLE}')


async def migrate(
    database: SqlDatabase, component: str, migrations: Sequence[Migration]
) -> list[int]:
    """Apply `component`'s pending migrations in one transaction; return the versions run."""
    _check_sequence(component, migrations)
    async with database.transaction(write=True) as connection:
        if database.dialect == "postgresql":
            await _prepare_postgres(connection)
        await connection.exec_driver_sql(_LEDGER)
        pending = _pending(component, migrations, await _applied(connection, component))
        for migration in pending:
            statements = migration.sqlite if database.dialect == "sqlite" else migration.postgresql
            for statement in statements:
                await connection.exec_driver_sql(statement)
            await connection.execute(
                text(
                    "INSERT INTO onionskin_schema_migrations (component, version, name, "
                    "applied_at) VALUES (:c, :v, :n, :t)"
                ),
                {
                    "c": component,
                    "v": migration.version,
                    "n": migration.name,
                    "t": datetime.now(UTC).isoformat(),
                },
            )
    return [migration.version for migration in pending]


async def ensure_schema(
    database: SqlDatabase, component: str, migrations: Sequence[Migration]
) -> None:
    """Make `component`'s schema current: migrate SQLite; on PostgreSQL refuse if behind."""
    if database.dialect == "sqlite":
        await migrate(database, component, migrations)
        return
    _check_sequence(component, migrations)
    async with database.transaction() as connection:
        exists = (
            await connection.execute(text("SELECT to_regclass('onionskin_schema_migrations')"))
        ).scalar_one()
        applied = await _applied(connection, component) if exists is not None else {}
    pending = _pending(component, migrations, applied)
    if pending:
        raise StoreError(
            f"the PostgreSQL schema for {component} is behind ({len(pending)} migrations "
            f"pending): run `onionskin db migrate {database.url}` first"
        )
