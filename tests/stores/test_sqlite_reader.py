"""SQLite's reader: a read-only connection on a thread of its own, many reads per batch."""

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
from onionskin.stores._sqlite_reader import SqliteReader

INSERT = "INSERT INTO notes (body) VALUES (:b)"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(f"sqlite:///{tmp_path}/reader.db")
    await db.write(lambda s: s.execute("CREATE TABLE notes (body TEXT PRIMARY KEY)"))
    yield db
    await db.aclose()


def _insert(body: str) -> Callable[[Statements], Rows]:
    return lambda s: s.execute(INSERT, {"b": body})


def _bodies(s: Statements) -> list[str]:
    return [body for (body,) in s.execute("SELECT body FROM notes ORDER BY body")]


async def test_reads_cannot_write(database: SqlDatabase) -> None:
    with pytest.raises(StoreError, match=r"readonly|read-only"):
        await database.read(_insert("sneaky"))
    assert await database.read(_bodies) == []


async def test_a_read_sees_every_write_awaited_before_it(database: SqlDatabase) -> None:
    for n in range(30):
        await database.write(_insert(f"n{n:02d}"))
        assert len(await database.read(_bodies)) == n + 1


async def test_reads_do_not_wait_for_a_write_in_progress(database: SqlDatabase) -> None:
    await database.write(_insert("committed"))
    other = sqlite3.connect(database.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute(INSERT, {"b": "uncommitted"})
    try:
        # WAL: the reader sees the last commit while another writer holds the lock.
        assert await database.read(_bodies) == ["committed"]
    finally:
        other.execute("COMMIT")
        other.close()
    assert await database.read(_bodies) == ["committed", "uncommitted"]


async def test_reads_waiting_together_share_one_read_transaction(database: SqlDatabase) -> None:
    started, release = threading.Event(), threading.Event()

    def block(_: Statements) -> None:
        started.set()
        release.wait(timeout=10)

    held = asyncio.ensure_future(database.read(block))
    assert await asyncio.to_thread(started.wait, 10)
    seen: list[Statements] = []  # kept alive: ids of freed objects could repeat
    reads = [asyncio.ensure_future(database.read(seen.append)) for _ in range(10)]
    cancelled = asyncio.ensure_future(database.read(seen.append))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, *reads)
    assert len(seen) == 10  # the cancelled read never ran
    assert len({id(s) for s in seen}) == 1


async def test_a_failed_read_fails_alone(database: SqlDatabase) -> None:
    await database.write(_insert("a"))
    bad, good = await asyncio.gather(
        database.read(lambda s: s.execute("SELECT nope FROM notes")),
        database.read(_bodies),
        return_exceptions=True,
    )
    assert isinstance(bad, StoreError)
    assert "no such column" in str(bad)
    assert good == ["a"]


async def test_a_file_that_cannot_be_opened_fails_each_read_and_the_reader_lives_on(
    tmp_path: Path,
) -> None:
    reader = SqliteReader(str(tmp_path / "missing-folder" / "x.db"))
    for _ in range(2):
        with pytest.raises(StoreError, match="unable to open database file"):
            await reader.submit(lambda s: s.execute("SELECT 1"))
    thread = reader.close()
    assert thread is not None
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()


async def test_a_closed_reader_starts_its_thread_again(database: SqlDatabase) -> None:
    await database.write(_insert("a"))
    await database.aclose()
    assert not [t for t in threading.enumerate() if t.name == "onionskin-sqlite-reader"]
    assert await database.read(_bodies) == ["a"]
