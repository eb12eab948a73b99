"""SQLite writes on the event loop's own thread, with group commit.

Written by hand because no library does this: aiosqlite and SQLAlchemy's async layer cost
about 0.7 ms of CPU per transaction (a thread crossing per statement, greenlet switches),
and neither lets concurrent writers share a commit. A writer *thread* was tried too: a
statement that returns to Python must take the GIL back from the busy event loop, which can
take up to the interpreter's switch interval (5 ms), while SQLite's write lock, shared with
every other worker process, is held. Here the statements run on the loop's thread, so the
lock is held only as long as SQLite itself works (microseconds per statement), and nothing
crosses threads.

- Every job submitted while the writer is busy or in the same loop iteration runs in one
  `BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT: a job that raises undoes
  only its own work and gets its own exception; the others commit together. A caller's
  `await` returns after the COMMIT that holds its job.
- The loop never blocks on the lock: the connection's busy timeout is 0, so SQLite answers
  "busy" at once when another process writes, and the writer sleeps asynchronously (1 ms,
  growing to 4 ms, with jitter) before trying again, for up to `lock_timeout` seconds.
- WAL checkpoints, the one slow step (they sync the file), run on a thread of their own
  instead of inside a commit: this connection's automatic checkpoints are off.

A job cancelled before its turn is skipped; one that already ran commits. Jobs are sync
functions of `Statements`: they run on the loop and must be short (a few indexed
statements), as every store's writes are.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from onionskin.stores._rows import Statements
from onionskin.stores._sqlite_connection import (
    SqliteStatements,
    connect,
    is_busy,
    settle,
    store_error,
)

T = TypeVar("T")
logger = logging.getLogger("onionskin.stores")

MAX_BATCH = 256
"""Jobs per transaction at most: bounds how long one commit holds the write lock."""
LOCK_TIMEOUT = 30.0
"""Seconds a batch waits for another process's write lock before failing."""
CHECKPOINT_INTERVAL = 0.1
"""Seconds between two WAL checkpoints at most (one runs only after commits)."""
_SAVEPOINT = "onionskin_job"


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[Statements], T]
    future: asyncio.Future[T]


class SqliteWriter:
    """Writes to `path` from one event loop (the one it is used on), many jobs per commit.

    Args:
        path: the database file.
        lock_timeout: seconds to wait for another connection's write lock.
    """

    def __init__(self, path: str, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._pending: list[_Job[Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connection: sqlite3.Connection | None = None
        self._checkpointer = _Checkpointer(path)

    async def submit(self, work: Callable[[Statements], T]) -> T:
        """Run `work` in a write transaction; its result or its exception.

        A `sqlite3.Error` becomes a `StoreError`; any other exception comes back unchanged.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Job(work, future))
        if self._flusher is None:
            # A task starts on the loop's next turn: what else is submitted before then
            # (other runs' checkpoints) shares its commit.
            self._flusher = loop.create_task(self._flush())
        return await future

    async def aclose(self) -> None:
        """Finish the jobs queued, close the connection and stop the checkpoint thread."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        thread = self._checkpointer.close()
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def abandon(self) -> None:
        """Close without waiting: for a writer whose event loop is gone."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._checkpointer.close()

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._commit(batch)
        except BaseException:
            for job in self._pending:
                job.future.cancel()  # the loop is going away: so are the callers
            self._pending.clear()
            raise
        finally:
            self._flusher = None

    async def _commit(self, batch: list[_Job[Any]]) -> None:
        """Run `batch` in one transaction (those still wanted) and settle every job."""
        try:
            connection = self._connect()
            await self._retry_busy(connection, "BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            _settle([(job, None, store_error(error)) for job in batch])
            return
        except BaseException:
            for job in batch:
                job.future.cancel()
            raise
        # Skipped now, not earlier: a caller may have given up while the lock was taken.
        jobs = [job for job in batch if not job.future.cancelled()]
        statements = SqliteStatements(connection)
        outcomes: list[_Outcome] = []
        try:
            outcomes = [_run_job(connection, statements, job) for job in jobs]
            await self._retry_busy(connection, "COMMIT")
        except BaseException as error:
            # A savepoint or the commit failed (or the loop is stopping): nothing is kept.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if not isinstance(error, sqlite3.Error):
                for job in batch:
                    job.future.cancel()
                raise
            failure = store_error(error)
            outcomes = [(job, None, failure) for job in jobs]
        _settle(outcomes)
        self._checkpointer.nudge()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # busy_timeout=0: "busy" at once, waited for here without blocking the loop;
            # wal_autocheckpoint=0: the checkpoint thread does it, not a commit.
            self._connection = connect(self.path, "busy_timeout=0", "wal_autocheckpoint=0")
        return self._connection

    async def _retry_busy(self, connection: sqlite3.Connection, statement: str) -> None:
        """Run `statement`, waiting (asynchronously) while another connection holds the lock.

        Both statements may be retried as they are: a busy `BEGIN IMMEDIATE` began nothing,
        and a busy COMMIT leaves the transaction open.
        """
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.lock_timeout, 0.001
        while True:
            try:
                connection.execute(statement)
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error) or loop.time() >= deadline:
                    raise
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # jitter: workers spread out
            delay = min(delay * 2, 0.004)


_Outcome = tuple[_Job[Any], Any, BaseException | None]


def _run_job(connection: sqlite3.Connection, statements: Statements, job: _Job[Any]) -> _Outcome:
    connection.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        result = job.work(statements)
    except Exception as error:  # handed to its caller; the batch goes on
        connection.execute(f"ROLLBACK TO {_SAVEPOINT}")
        connection.execute(f"RELEASE {_SAVEPOINT}")
        failure = store_error(error) if isinstance(error, sqlite3.Error) else error
        return job, None, failure
    connection.execute(f"RELEASE {_SAVEPOINT}")
    return job, result, None


def _settle(outcomes: list[_Outcome]) -> None:
    settle((job.future, result, error) for job, result, error in outcomes)


class _Checkpointer:
    """A thread that copies the WAL back into the database file after commits.

    PASSIVE checkpoints never wait for readers or writers: they copy what they can. One runs
    at most every `CHECKPOINT_INTERVAL` seconds, and only when something was committed.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        """Something was committed: checkpoint soon."""
        if self._thread is None:
            self._wanted, self._stop = threading.Event(), threading.Event()
            self._thread = threading.Thread(
                target=self._serve,
                args=(self._wanted, self._stop),
                name="onionskin-sqlite-checkpoint",
                daemon=True,
            )
            self._thread.start()
        self._wanted.set()

    def close(self) -> threading.Thread | None:
        """Ask the thread to stop; the thread, to join."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wanted.set()
        return thread

    def _serve(self, wanted: threading.Event, stop: threading.Event) -> None:
        try:
            connection = connect(self.path)
        except sqlite3.Error:
            return  # the writer's own commits report what is wrong with the file
        try:
            while True:
                wanted.wait()
                if stop.is_set():
                    return
                wanted.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # the next commit asks again
                    logger.warning("the SQLite checkpoint of %s failed: %s", self.path, error)
                stop.wait(CHECKPOINT_INTERVAL)
        finally:
            connection.close()
