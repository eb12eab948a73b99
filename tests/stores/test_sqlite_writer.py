"""SQLite's writer: group commit on the loop, waiting for other processes without blocking."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from onionskin.core.errors import StoreError
from onionskin.stores._rows import Rows, Statements
from onionskin.stores._sql import SqlDatabase
from onionskin.stores._sqlite_writer import MAX_BATCH, SqliteWriter

INSERT = "INSERT INTO notes (body) VALUES (:b)"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(f"sqlite:///{tmp_path}/writer.db")
    await db.write(lambda s: s.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)"))
    yield db
    await db.aclose()


def _insert(body: str) -> Callable[[Statements], Rows]:
    return lambda s: s.execute(INSERT, {"b": body})


def _bodies(s: Statements) -> list[str]:
    return [body for (body,) in s.execute("SELECT body FROM notes ORDER BY body")]


@contextmanager
def another_process_writing(path: str) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock from another connection, as another worker would."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()


def _path(database: SqlDatabase) -> str:
    return database.url.removeprefix("sqlite:///")


async def test_writes_waiting_for_the_lock_share_one_transaction(database: SqlDatabase) -> None:
    seen: list[Statements] = []  # kept alive: ids of freed objects could repeat

    def insert(n: int) -> Callable[[Statements], None]:
        def work(s: Statements) -> None:
            s.execute(INSERT, {"b": f"n{n:02d}"})
            seen.append(s)  # one Statements per transaction

        return work

    with another_process_writing(_path(database)):
        writes = [asyncio.ensure_future(database.write(insert(n))) for n in range(20)]
        await asyncio.sleep(0.05)
        assert not any(write.done() for write in writes)  # waiting, not failed
    await asyncio.gather(*writes)
    assert len(seen) == 20
    assert len({id(s) for s in seen}) == 1
    assert len(await database.read(_bodies)) == 20


async def test_writes_submitted_in_one_turn_of_the_loop_share_one_commit(
    database: SqlDatabase,
) -> None:
    seen: list[Statements] = []
    await asyncio.gather(*(database.write(seen.append) for _ in range(30)))
    assert len({id(s) for s in seen}) == 1


async def test_a_transaction_holds_at_most_max_batch_jobs(database: SqlDatabase) -> None:
    seen: list[Statements] = []
    await asyncio.gather(*(database.write(seen.append) for _ in range(MAX_BATCH + 10)))
    ids = [id(s) for s in seen]
    assert sorted((ids.count(x) for x in set(ids)), reverse=True) == [MAX_BATCH, 10]


async def test_in_a_shared_transaction_a_failed_job_loses_only_its_own_rows(
    database: SqlDatabase,
) -> None:
    def fail(s: Statements) -> None:
        s.execute(INSERT, {"b": "lost"})
        raise LookupError("refused by the store")

    ok1, bad, dup, ok2 = await asyncio.gather(
        database.write(_insert("kept-1")),
        database.write(fail),
        database.write(_insert("kept-1")),
        database.write(_insert("kept-2")),
        return_exceptions=True,
    )
    assert isinstance(ok1, Rows)
    assert isinstance(ok2, Rows)
    assert isinstance(bad, LookupError)
    assert str(bad) == "refused by the store"
    assert isinstance(dup, StoreError)
    assert "UNIQUE constraint failed" in str(dup)
    assert isinstance(dup.__cause__, sqlite3.IntegrityError)
    assert await database.read(_bodies) == ["kept-1", "kept-2"]


async def test_a_write_cancelled_while_waiting_for_the_lock_writes_nothing(
    database: SqlDatabase,
) -> None:
    with another_process_writing(_path(database)):
        cancelled = asyncio.ensure_future(database.write(_insert("gone")))
        kept = asyncio.ensure_future(database.write(_insert("kept")))
        await asyncio.sleep(0.02)
        cancelled.cancel()
        await asyncio.sleep(0.02)
    await kept
    assert cancelled.cancelled()
    assert await database.read(_bodies) == ["kept"]


async def test_the_loop_runs_on_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.db")
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)")
    setup.close()
    writer = SqliteWriter(path, lock_timeout=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.ensure_future(ticker())
    try:
        with another_process_writing(path), pytest.raises(StoreError, match="database is locked"):
            await writer.submit(_insert("late"))
    finally:
        ticking.cancel()
    assert ticks >= 10  # the loop was never blocked while the writer waited
    assert (await writer.submit(lambda s: s.execute("SELECT count(*) FROM notes"))).scalar() == 0
    await writer.aclose()


async def test_commits_are_checkpointed_into_the_database_file_by_a_thread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoints.db"
    db = SqlDatabase(f"sqlite:///{path}")
    await db.write(lambda s: s.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)"))
    size_before = path.stat().st_size
    for n in range(20):
        await db.write(_insert(f"{n:03d}" + "x" * 100_000))
    # The writer's connection never checkpoints (wal_autocheckpoint=0); the thread does.
    for _ in range(200):
        if path.stat().st_size > size_before + 1_000_000:
            break
        await asyncio.sleep(0.025)
    assert path.stat().st_size > size_before + 1_000_000
    await db.aclose()


async def test_a_file_that_cannot_be_opened_fails_each_write_and_the_writer_lives_on(
    tmp_path: Path,
) -> None:
    writer = SqliteWriter(str(tmp_path / "missing-folder" / "x.db"))
    for _ in range(2):
        with pytest.raises(StoreError, match="unable to open database file"):
            await writer.submit(lambda s: s.execute("SELECT 1"))
    await writer.aclose()


async def test_a_closed_database_writes_again_on_next_use(database: SqlDatabase) -> None:
    await database.write(_insert("before"))
    await database.aclose()
    await database.write(_insert("after"))
    assert await database.read(_bodies) == ["after", "before"]


async def test_each_event_loop_gets_its_own_writer(database: SqlDatabase) -> None:
    def other_loop() -> int:
        return asyncio.run(database.write(lambda s: s.execute(INSERT, {"b": "there"}).rowcount))

    here, there = await asyncio.gather(
        database.write(lambda s: s.execute(INSERT, {"b": "here"}).rowcount),
        asyncio.to_thread(other_loop),
    )
    assert (here, there) == (1, 1)
    assert await database.read(_bodies) == ["here", "there"]


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from onionskin.stores._sql import SqlDatabase

    async def main(url, name):
        db = SqlDatabase(url)
        async def one(n):
            await db.write(lambda s: s.execute(
                "INSERT INTO notes (body) VALUES (:b)", {"b": f"{name}-{n:03d}"}))
        await asyncio.gather(*(one(n) for n in range(300)))
        await db.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_writers_in_several_processes_wait_for_each_other_and_lose_nothing(
    database: SqlDatabase,
) -> None:
    url = f"sqlite:///{_path(database)}"
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, url, f"w{n}")
        for n in range(3)
    ]
    assert [await worker.wait() for worker in workers] == [0, 0, 0]
    bodies = await database.read(_bodies)
    assert len(bodies) == 900
    assert {body.split("-")[0] for body in bodies} == {"w0", "w1", "w2"}
