"""One SQL database for the stores: SQLite (embedded default) or PostgreSQL, by URL.

Built on SQLAlchemy's async Core (no ORM): stores write plain SQL that both dialects accept
and get two kinds of transaction from here.

- SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
  `BEGIN IMMEDIATE`: it takes the write lock at once, so concurrent writers queue instead of
  failing with "database is locked" half-way through (the deferred default upgrades the lock
  late and cannot wait for it).
- PostgreSQL transactions that belong to a tenant switch to the non-owner role
  `onionskin_tenant` and set `onionskin.tenant_id` for that transaction only, so the
  row-level security policies the migrations install apply even when the application
  connects as the tables' owner: a query that forgets the tenant sees nothing.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from onionskin.core.errors import ConfigError, StoreError

TENANT_ROLE = "onionskin_tenant"
"""The PostgreSQL role tenant transactions run as; it owns nothing, so RLS binds it."""
TENANT_SETTING = "onionskin.tenant_id"
"""The per-transaction PostgreSQL setting the row-level security policies compare with."""

Dialect = Literal["sqlite", "postgresql"]

_DRIVERS: Mapping[str, tuple[Dialect, str]] = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "sqlite+aiosqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgres": ("postgresql", "postgresql+psycopg"),
    "postgresql": ("postgresql", "postgresql+psycopg"),
    "postgresql+psycopg": ("postgresql", "postgresql+psycopg"),
}


def normalize_url(url: str) -> tuple[Dialect, str]:
    """Return the dialect of a store URL and the async-driver URL SQLAlchemy needs.

    `sqlite:///path/to.db`, `postgresql://user@host/db` (and `postgres://`) are accepted;
    any other scheme is a `ConfigError` naming the accepted ones.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError(f"not a database URL: {url!r} ({error})") from None
    known = _DRIVERS.get(parsed.drivername)
    if known is None:
        raise ConfigError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path.db "
            "or postgresql://user@host/db"
        )
    dialect, driver = known
    if dialect == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            "a SQLite store needs a file (sqlite:///path.db): an in-memory SQLite database "
            "is private to one connection; use the memory store instead"
        )
    if dialect == "postgresql" and importlib.util.find_spec("psycopg") is None:
        raise ImportError('the PostgreSQL stores need psycopg: pip install "onionskin[postgres]"')
    return dialect, parsed.set(drivername=driver).render_as_string(hide_password=False)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:  # Any: DB-API object
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions can't be IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            # Two processes opening the same new file (`serve --workers 2`): switching to
            # WAL needs an exclusive lock and SQLite answers "locked" at once, without its
            # busy handler. The mode is kept in the file, so the one that got the lock
            # switches it for both; this connection sees WAL from its next transaction.
            if "locked" not in str(error):
                raise
        for pragma in ("synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:  # Any: SQLAlchemy's sync Connection
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def _prepare_postgres_schema(engine: AsyncEngine, schema: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:  # Any: DB-API object
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_connection.commit()


class SqlDatabase:
    """An async engine for one store URL and the transactions stores run in.

    Args:
        url: `sqlite:///path.db` or `postgresql://user@host/db`.
        schema: PostgreSQL only: keep the tables in this schema (created if missing); tests
            use one schema each.
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.dialect, driver_url = normalize_url(url)
        self.url = make_url(url).render_as_string(hide_password=True)
        """The URL with any password hidden: safe in messages and logs."""
        if schema is not None and (self.dialect != "postgresql" or not schema.isidentifier()):
            raise ConfigError(f"schema= needs PostgreSQL and a plain identifier, got {schema!r}")
        self.schema = schema
        if self.dialect == "sqlite":
            database = make_url(driver_url).database
            assert database is not None  # normalize_url refused URLs without a file
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(driver_url, pool_pre_ping=self.dialect == "postgresql")
        if self.dialect == "sqlite":
            _prepare_sqlite(self.engine)
        elif schema is not None:
            _prepare_postgres_schema(self.engine, schema)

    @asynccontextmanager
    async def transaction(
        self, *, tenant_id: str | None = None, write: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed on success and rolled back on any exception.

        Args:
            tenant_id: on PostgreSQL, run as the tenant role with this tenant set, so
                row-level security shows and accepts only this tenant's rows.
            write: on SQLite, take the write lock at the start (`BEGIN IMMEDIATE`).

        Driver errors become `StoreError`; the store's own exceptions pass unchanged.
        """
        try:
            async with self.engine.connect() as connection:
                if write and self.dialect == "sqlite":
                    await connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                async with connection.begin():
                    if tenant_id is not None and self.dialect == "postgresql":
                        # One round trip: `role` is a setting too (SET LOCAL ROLE's own).
                        await connection.exec_driver_sql(
                            "SELECT set_config('role', %(role)s, true), "
                            "set_config(%(setting)s, %(tenant)s, true)",
                            {"role": TENANT_ROLE, "setting": TENANT_SETTING, "tenant": tenant_id},
                        )
                    yield connection
        except SQLAlchemyError as error:
            raise StoreError(f"the {self.dialect} store failed: {error}") from error

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
