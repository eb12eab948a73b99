"""SQLite's lanes: group commit for writes, a read-only reader, cancellation and restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from onionskin.core.errors import StoreError
from onionskin.stores._rows import Rows, Statements
from onionskin.stores._sql import SqlDatabase
from onionskin.stores._sqlite_lanes import MAX_BATCH, SqliteLane

INSERT = "INSERT INTO notes (body) VALUES (:b)"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(f"sqlite:///{tmp_path}/lanes.db")
    await db.write(lambda s: s.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)"))
    yield db
    await db.aclose()


def _insert(body: str) -> Callable[[Statements], Rows]:
    return lambda s: s.execute(INSERT, {"b": body})


def _bodies(s: Statements) -> list[str]:
    return [body for (body,) in s.execute("SELECT body FROM notes ORDER BY body")]


async def _hold_the_writer(db: SqlDatabase) -> tuple[threading.Event, asyncio.Future[None]]:
    """Occupy the writer thread until the returned event is set: others queue behind it."""
    started, release = threading.Event(), threading.Event()

    def block(_: Statements) -> None:
        started.set()
        release.wait(timeout=10)

    held = asyncio.ensure_future(db.write(block))
    assert await asyncio.to_thread(started.wait, 10)
    return release, held


async def test_writes_waiting_together_share_one_transaction(database: SqlDatabase) -> None:
    release, held = await _hold_the_writer(database)
    seen: list[Statements] = []  # kept alive: ids of freed objects could repeat

    def insert(n: int) -> Callable[[Statements], None]:
        def work(s: Statements) -> None:
            s.execute(INSERT, {"b": f"n{n:02d}"})
            seen.append(s)  # one Statements per transaction

        return work

    writes = [asyncio.ensure_future(database.write(insert(n))) for n in range(20)]
    await asyncio.sleep(0)  # every write is queued before the writer is free
    release.set()
    await asyncio.gather(held, *writes)
    assert len(seen) == 20
    assert len({id(s) for s in seen}) == 1
    assert len(await database.read(_bodies)) == 20


async def test_a_transaction_holds_at_most_max_batch_jobs(database: SqlDatabase) -> None:
    release, held = await _hold_the_writer(database)
    seen: list[Statements] = []  # kept alive: ids of freed objects could repeat
    writes = [asyncio.ensure_future(database.write(seen.append)) for _ in range(MAX_BATCH + 10)]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, *writes)
    ids = [id(s) for s in seen]
    sizes = sorted((ids.count(x) for x in set(ids)), reverse=True)
    assert sizes == [MAX_BATCH, 10]


async def test_in_a_shared_transaction_a_failed_job_loses_only_its_own_rows(
    database: SqlDatabase,
) -> None:
    release, held = await _hold_the_writer(database)

    def fail(s: Statements) -> None:
        s.execute(INSERT, {"b": "lost"})
        raise LookupError("refused by the store")

    ok1 = asyncio.ensure_future(database.write(lambda s: s.execute(INSERT, {"b": "kept-1"})))
    bad = asyncio.ensure_future(database.write(fail))
    dup = asyncio.ensure_future(database.write(lambda s: s.execute(INSERT, {"b": "kept-1"})))
    ok2 = asyncio.ensure_future(database.write(lambda s: s.execute(INSERT, {"b": "kept-2"})))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, ok1, ok2)
    with pytest.raises(LookupError, match="refused by the store"):
        await bad
    with pytest.raises(StoreError, match="UNIQUE constraint failed") as caught:
        await dup
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert await database.read(_bodies) == ["kept-1", "kept-2"]


async def test_a_write_cancelled_before_its_turn_writes_nothing(database: SqlDatabase) -> None:
    release, held = await _hold_the_writer(database)
    cancelled = asyncio.ensure_future(database.write(lambda s: s.execute(INSERT, {"b": "gone"})))
    kept = asyncio.ensure_future(database.write(lambda s: s.execute(INSERT, {"b": "kept"})))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, kept)
    assert cancelled.cancelled()
    assert await database.read(_bodies) == ["kept"]


async def test_reads_cannot_write(database: SqlDatabase) -> None:
    with pytest.raises(StoreError, match=r"readonly|read-only"):
        await database.read(lambda s: s.execute(INSERT, {"b": "sneaky"}))
    assert await database.read(_bodies) == []


async def test_a_read_sees_every_write_awaited_before_it(database: SqlDatabase) -> None:
    for n in range(30):
        await database.write(_insert(f"n{n:02d}"))
        assert len(await database.read(_bodies)) == n + 1


async def test_reads_do_not_wait_for_a_write_in_progress(database: SqlDatabase) -> None:
    await database.write(lambda s: s.execute(INSERT, {"b": "committed"}))
    started, release = threading.Event(), threading.Event()

    def slow_write(s: Statements) -> None:
        s.execute(INSERT, {"b": "uncommitted"})
        started.set()
        release.wait(timeout=10)

    writing = asyncio.ensure_future(database.write(slow_write))
    assert await asyncio.to_thread(started.wait, 10)
    try:
        # WAL: the reader sees the last commit while the writer holds the lock.
        assert await database.read(_bodies) == ["committed"]
    finally:
        release.set()
    await writing
    assert await database.read(_bodies) == ["committed", "uncommitted"]


async def test_a_closed_database_starts_its_threads_again_on_next_use(
    database: SqlDatabase,
) -> None:
    await database.write(lambda s: s.execute(INSERT, {"b": "before"}))
    await database.aclose()
    assert not [t for t in threading.enumerate() if t.name.startswith("onionskin-sqlite")]
    await database.write(lambda s: s.execute(INSERT, {"b": "after"}))
    assert await database.read(_bodies) == ["after", "before"]


async def test_a_file_that_cannot_be_opened_fails_each_job_and_the_lane_lives_on(
    tmp_path: Path,
) -> None:
    lane = SqliteLane(str(tmp_path / "missing-folder" / "x.db"), write=True)
    for _ in range(2):
        with pytest.raises(StoreError, match="unable to open database file"):
            await lane.submit(lambda s: s.execute("SELECT 1"))
    thread = lane.close()
    assert thread is not None
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()


async def test_jobs_from_two_event_loops_each_settle_on_their_own(tmp_path: Path) -> None:
    lane = SqliteLane(str(tmp_path / "loops.db"), write=True)
    await lane.submit(lambda s: s.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)"))

    def other_loop() -> int:
        return asyncio.run(lane.submit(lambda s: s.execute(INSERT, {"b": "other"}).rowcount))

    here, there = await asyncio.gather(
        lane.submit(lambda s: s.execute(INSERT, {"b": "here"}).rowcount),
        asyncio.to_thread(other_loop),
    )
    assert (here, there) == (1, 1)
    thread = lane.close()
    assert thread is not None
    await asyncio.to_thread(thread.join, 10)
