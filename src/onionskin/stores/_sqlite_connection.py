"""What every onionskin SQLite connection shares: its settings, `Statements`, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from onionskin.core.errors import StoreError
from onionskin.stores._rows import Rows

BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def configure_sqlite(connection: Any) -> None:  # Any: a DB-API (sqlite3) connection
    """The settings every onionskin SQLite connection uses, in autocommit mode.

    busy_timeout first: writers in other processes wait for the lock instead of failing.
    """
    connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:
        # Two processes opening the same new file (`serve --workers 2`): switching to WAL
        # needs an exclusive lock and SQLite answers "locked" at once, without its busy
        # handler. The mode is kept in the file, so the one that got the lock switches it
        # for both; this connection sees WAL from its next transaction.
        if "locked" not in str(error):
            raise
    for pragma in ("synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def connect(path: str, *pragmas: str) -> sqlite3.Connection:
    """A configured connection on `path` that any thread may use (one at a time).

    `pragmas` (`"query_only=ON"`, say) are set after the common settings.
    """
    connection = sqlite3.connect(path, check_same_thread=False, cached_statements=256)
    try:
        configure_sqlite(connection)
        for pragma in pragmas:
            connection.execute(f"PRAGMA {pragma}")
    except BaseException:
        connection.close()
        raise
    return connection


def is_busy(error: sqlite3.Error) -> bool:
    """True when SQLite answered that another connection holds the lock it needs."""
    return getattr(error, "sqlite_errorcode", None) in BUSY_CODES


def store_error(error: sqlite3.Error) -> StoreError:
    """The `StoreError` a driver error becomes (the message names SQLite's own words)."""
    failure = StoreError(f"the sqlite store failed: {error}")
    failure.__cause__ = error
    return failure


class SqliteStatements:
    """`Statements` on a sqlite3 connection: `:name` parameters are sqlite3's own style."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, object] | None = None, /) -> Rows:
        """Run `sql` with `params`; the rows, all fetched."""
        cursor = self._connection.execute(sql, params or {})
        try:
            rows = cursor.fetchall()
            columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
            # rowcount after fetchall(): INSERT ... RETURNING counts its rows as they come.
            return Rows(rows, columns, cursor.rowcount)
        finally:
            cursor.close()


def settle(outcomes: Iterable[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Hand each caller its result or exception; a future already done was cancelled."""
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
