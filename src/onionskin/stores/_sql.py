"""One SQL database for the stores: SQLite (embedded default) or PostgreSQL, by URL.

Built on SQLAlchemy's async Core (no ORM): stores write plain SQL that both dialects accept
and get two kinds of transaction from here.

- Stores hand their units of work to `read()` and `write()`: sync functions of
  `Statements`, run in one transaction. On SQLite, writes run on the event loop's thread
  with group commit (`_sqlite_writer`) and reads on a thread of their own with a read-only
  connection (`_sqlite_reader`), both on stdlib `sqlite3`; on PostgreSQL, in an engine
  transaction through SQLAlchemy's sync facade (`run_sync`).
  `transaction()` is the engine's async connection, for migrations and one-off queries.
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

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, TextClause, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from onionskin.core.errors import ConfigError, StoreError
from onionskin.stores._rows import Rows, Statements
from onionskin.stores._sqlite_connection import configure_sqlite
from onionskin.stores._sqlite_reader import SqliteReader
from onionskin.stores._sqlite_writer import SqliteWriter

T = TypeVar("T")

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
        configure_sqlite(dbapi_connection)

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
        self.engine = create_async_engine(driver_url, pool_pre_ping=self.dialect == "postgresql")
        self._sqlite_path: str | None = None
        self._reader: SqliteReader | None = None
        self._writers: dict[asyncio.AbstractEventLoop, SqliteWriter] = {}
        if self.dialect == "sqlite":
            database = make_url(driver_url).database
            assert database is not None  # normalize_url refused URLs without a file
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            _prepare_sqlite(self.engine)
            self._sqlite_path, self._reader = database, SqliteReader(database)
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

    async def read(self, work: Callable[[Statements], T], *, tenant_id: str | None = None) -> T:
        """Run `work` in a read transaction (as `tenant_id` on PostgreSQL); its result.

        Driver errors become `StoreError`; the store's own exceptions pass unchanged.
        """
        if self._reader is not None:
            return await self._reader.submit(work)
        return await self._through_engine(work, tenant_id, write=False)

    async def write(self, work: Callable[[Statements], T], *, tenant_id: str | None = None) -> T:
        """Run `work` in a write transaction (as `tenant_id` on PostgreSQL); its result.

        On SQLite it may share its transaction with other writers' work (group commit):
        each one's changes are kept or undone on their own, and this returns after the
        COMMIT that holds its changes. An exception undoes only `work`'s changes.
        """
        if self._sqlite_path is not None:
            return await self._writer(self._sqlite_path).submit(work)
        return await self._through_engine(work, tenant_id, write=True)

    def _writer(self, path: str) -> SqliteWriter:
        # One per event loop: its connection is used on that loop's thread only.
        loop = asyncio.get_running_loop()
        writer = self._writers.get(loop)
        if writer is None:
            for closed in [other for other in self._writers if other.is_closed()]:
                self._writers.pop(closed).abandon()
            writer = self._writers[loop] = SqliteWriter(path)
        return writer

    async def _through_engine(
        self, work: Callable[[Statements], T], tenant_id: str | None, *, write: bool
    ) -> T:
        async with self.transaction(tenant_id=tenant_id, write=write) as connection:
            return await connection.run_sync(lambda sync: work(_EngineStatements(sync)))

    async def aclose(self) -> None:
        """Stop SQLite's threads (after the work already queued) and close every connection."""
        writers, self._writers = self._writers, {}
        loop = asyncio.get_running_loop()
        for owner, writer in writers.items():
            if owner is loop:
                await writer.aclose()
            else:
                writer.abandon()  # its loop is another (closed) one: nothing to wait for
        thread = self._reader.close() if self._reader is not None else None
        if thread is not None:
            await asyncio.to_thread(thread.join)
        await self.engine.dispose()


@lru_cache(maxsize=512)
def _text(sql: str) -> TextClause:
    # Built once per SQL string: text() parses the placeholders every time it is called.
    return text(sql)


class _EngineStatements:
    """`Statements` on SQLAlchemy's sync facade of an engine connection (PostgreSQL)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, object] | None = None, /) -> Rows:
        result = self._connection.execute(_text(sql), dict(params or {}))
        if not result.returns_rows:
            return Rows((), (), result.rowcount)
        rows = [tuple(row) for row in result.all()]
        return Rows(rows, tuple(result.keys()), result.rowcount)
