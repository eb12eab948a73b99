"""SQLite reads on a thread of their own, on a read-only connection, many per transaction.

Written by hand because no library does this well: aiosqlite gives every pooled connection
a thread and crosses threads once per statement, and SQLAlchemy's async layer adds greenlet
switches to each call (together about 0.7 ms of CPU per transaction). Here a store hands
over its whole unit of work (a sync function of `Statements`) and the reader's thread runs
it on a stdlib `sqlite3` connection. Reads stay off the event loop because one may be long
(a tenant's whole run list); in WAL mode they never wait for a writer.

Every job waiting when the thread is free runs in one read transaction, begun after each of
them was submitted: a read sees every write its caller awaited before. A job cancelled
before its turn is skipped. Jobs run on the reader's thread and must not touch the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from onionskin.stores._rows import Statements
from onionskin.stores._sqlite_connection import SqliteStatements, connect, settle, store_error

T = TypeVar("T")

MAX_BATCH = 256
"""Jobs per read transaction at most."""


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[Statements], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


_Outcome = tuple[_Job[Any], Any, BaseException | None]
_STOP = object()


class SqliteReader:
    """One thread and one read-only sqlite3 connection on `path`, running jobs in batches."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, work: Callable[[Statements], T]) -> T:
        """Run `work` on the reader's thread in a read transaction; its result or exception.

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
                self._thread = threading.Thread(
                    target=self._serve, name="onionskin-sqlite-reader", daemon=True
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
        """A read-only connection, or None after failing `batch` with the reason."""
        try:
            return connect(self.path, "query_only=ON")  # a read job cannot write
        except sqlite3.Error as error:
            _deliver([(job, None, store_error(error)) for job in batch])
            return None

    def _run(self, connection: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        """Run `batch` in one read transaction and hand every job its outcome."""
        jobs = [job for job in batch if not job.future.cancelled()]  # a benign race
        if not jobs:
            return
        statements = SqliteStatements(connection)
        outcomes: list[_Outcome] = []
        try:
            connection.execute("BEGIN")
            for job in jobs:
                # Reads change nothing, so a failed one needs nothing undone.
                try:
                    outcomes.append((job, job.work(statements), None))
                except sqlite3.Error as error:
                    outcomes.append((job, None, store_error(error)))
                except BaseException as error:  # handed to the caller, whatever it is
                    outcomes.append((job, None, error))
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = store_error(error)
            outcomes = [(job, None, failure) for job in jobs]
        _deliver(outcomes)


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
    settle((job.future, result, error) for job, result, error in outcomes)
