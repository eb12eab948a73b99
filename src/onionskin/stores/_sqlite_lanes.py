"""SQLite's work on two threads of its own: one writes with group commit, one reads.

Written by hand because no library does this: aiosqlite gives every pooled connection a
thread and crosses threads once per statement, SQLAlchemy's async layer adds greenlet
switches to each call, and neither lets concurrent writers share a commit. Together they
cost about 0.7 ms of CPU per transaction, and concurrent writers queue for SQLite's one write
lock one transaction at a time. Here a store hands over its whole unit of work (a sync
function of `Statements`) and the lane's thread runs it on a stdlib `sqlite3` connection.

- **Writes**: every job waiting when the writer is free runs in one `BEGIN IMMEDIATE`
  transaction, each inside its own SAVEPOINT, so a job that raises undoes only its own work
  and gets its own exception; the others commit together. A caller's `await` returns after
  the COMMIT that holds its job, as with a transaction of its own: fifty concurrent runs'
  checkpoints cost one commit and one hold of the write lock, not fifty.
- **Reads** run on a second connection (WAL: readers never wait for the writer), in a
  read-only connection, each batch in one read transaction begun after every job in it was
  submitted, so a read sees every write its caller awaited before.

A job cancelled before its turn is skipped; one already running completes (its write
commits) and its result is dropped. Jobs are sync functions: they run on the lane's thread
and must not touch the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from onionskin.core.errors import StoreError
from onionskin.stores._rows import Rows

T = TypeVar("T")

MAX_BATCH = 256
"""Jobs per transaction at most: bounds how long one commit holds SQLite's write lock."""
_SAVEPOINT = "onionskin_job"


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


def store_error(error: sqlite3.Error) -> StoreError:
    """The `StoreError` a driver error becomes (the message names SQLite's own words)."""
    failure = StoreError(f"the sqlite store failed: {error}")
    failure.__cause__ = error
    return failure


class _Statements:
    """`Statements` on a sqlite3 connection: `:name` parameters are sqlite3's own style."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, object] | None = None, /) -> Rows:
        cursor = self._connection.execute(sql, params or {})
        try:
            rows = cursor.fetchall()
            columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
            # rowcount after fetchall(): INSERT ... RETURNING counts its rows as they come.
            return Rows(rows, columns, cursor.rowcount)
        finally:
            cursor.close()


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[_Statements], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


_Outcome = tuple[_Job[Any], Any, BaseException | None]
_STOP = object()


class SqliteLane:
    """One thread and one sqlite3 connection on `path`, running submitted jobs in batches.

    Args:
        path: the database file.
        write: a write lane (`BEGIN IMMEDIATE`, a savepoint per job) or a read-only one.
    """

    def __init__(self, path: str, *, write: bool) -> None:
        self.path = path
        self.write = write
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, work: Callable[[_Statements], T]) -> T:
        """Run `work` on the lane's thread in a transaction; its result or its exception.

        A `sqlite3.Error` becomes a `StoreError`; any other exception comes back unchanged.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put(_Job(work, future, loop))
        return await future

    def close(self) -> threading.Thread | None:
        """Ask the thread to stop once the jobs already queued ran; the thread, to join.

        A later `submit` starts a new thread (as SQLAlchemy's disposed engine reconnects).
        """
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
        return thread

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                kind = "writer" if self.write else "reader"
                self._thread = threading.Thread(
                    target=self._serve, name=f"onionskin-sqlite-{kind}", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    if connection is None:
                        connection = self._connect(batch)
                    if connection is not None:
                        self._run(connection, batch)
                if stop:
                    return
        finally:
            if connection is not None:
                connection.close()

    def _next_batch(self) -> tuple[list[_Job[Any]], bool]:
        """The jobs waiting (blocking for the first), and whether a stop came after them."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[_Job[Any]] = [first]  # type: ignore[list-item]  # only jobs and _STOP
        while len(batch) < MAX_BATCH:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)  # type: ignore[arg-type]  # only jobs and _STOP are queued
        return batch, False

    def _connect(self, batch: list[_Job[Any]]) -> sqlite3.Connection | None:
        """A configured connection, or None after failing `batch` with the reason."""
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, check_same_thread=False, cached_statements=256)
            configure_sqlite(connection)
            if not self.write:
                connection.execute("PRAGMA query_only=ON")  # a read job cannot write
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            _deliver([(job, None, store_error(error)) for job in batch])
            return None
        return connection

    def _run(self, connection: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        """Run `batch` in one transaction and hand every job its outcome."""
        jobs = [job for job in batch if not job.future.cancelled()]  # a benign race: see above
        if not jobs:
            return
        try:
            connection.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")
        except sqlite3.Error as error:
            _deliver([(job, None, store_error(error)) for job in jobs])
            return
        statements = _Statements(connection)
        outcomes: list[_Outcome] = []
        try:
            for job in jobs:
                outcomes.append(self._run_job(connection, statements, job))
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            # A savepoint or the commit itself failed: nothing of the batch is kept.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = store_error(error)
            outcomes = [(job, None, failure) for job in jobs]
        _deliver(outcomes)

    def _run_job(
        self, connection: sqlite3.Connection, statements: _Statements, job: _Job[Any]
    ) -> _Outcome:
        if not self.write:
            # Reads change nothing, so a failed one needs nothing undone.
            try:
                return job, job.work(statements), None
            except sqlite3.Error as error:
                return job, None, store_error(error)
            except BaseException as error:  # handed to the caller, whatever it is
                return job, None, error
        connection.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            result = job.work(statements)
        except BaseException as error:  # handed to the caller, whatever it is
            connection.execute(f"ROLLBACK TO {_SAVEPOINT}")
            connection.execute(f"RELEASE {_SAVEPOINT}")
            failure = store_error(error) if isinstance(error, sqlite3.Error) else error
            return job, None, failure
        connection.execute(f"RELEASE {_SAVEPOINT}")
        return job, result, None


def _deliver(outcomes: list[_Outcome]) -> None:
    """Settle each job's future on its own loop: one wake-up per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_loop[outcome[0].loop].append(outcome)
    for loop, settled in by_loop.items():
        # RuntimeError: the loop closed while its jobs ran; nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[_Outcome]) -> None:
    for job, result, error in outcomes:
        if job.future.done():
            continue  # cancelled while it ran
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)
