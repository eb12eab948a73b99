"""`JsonlWriter`: appends trace records to a file, one JSON line each, rotating it by size.

Writes are synchronous appends from the event loop, on purpose: one `os.write` of a line
to the page cache takes microseconds, less than a hop to a thread costs, and records stay
in call order. No fsync. The file (mode `0o600`: traces hold prompts) stays open between
records (opening and closing it per record cost more than the write), unbuffered: each
record is one `os.write`, so a finished call's line is in the file when the call returns.

Every `FOLLOW_SECONDS`, and before rotating, the path is stat'ed, as logging's
`WatchedFileHandler` does on every record: a path that no longer names the open file
(moved away, removed, or rotated by another writer) is reopened, so a file someone moved
away is recreated. Then the file is measured (`lseek(SEEK_END)`): its size drives
rotation. A writer that finds only its own lines counts its bytes itself until the next
look; one that finds another's (several processes on one file), or has just opened the
file, measures it before every record, so that rotation still counts every writer's lines.
Not a `stat` on every record: after a write it costs three times the write (2.6 µs of a
traced call's 8, on ext4), and every system call leaves the caches colder for the guards
around it (measured: a call through every guard, 0.7 µs for one `lseek`).

Rotation works like logging's `RotatingFileHandler` (`trace.jsonl` -> `trace.jsonl.1` ...
up to `backups`), not used as it counts characters, not bytes, and never notices a moved
file. A record is never split (one over `max_bytes` gets a file to itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic_core import to_json

from onionskin.middleware._trace_file import JsonValue

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT
FOLLOW_SECONDS = 0.25
"""How often a writer looks whether its path still names the file it has open."""

logger = logging.getLogger("onionskin.trace")


class _OpenFile:
    """The writer's file descriptor (-1 when closed) and which file it is: (device, inode)."""

    __slots__ = ("fd", "identity")

    def __init__(self) -> None:
        self.fd = -1
        self.identity = (-1, -1)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):  # nothing is left to do with a failed close
                os.close(fd)


class JsonlWriter:
    """Appends JSON records to a file, one per line, rotating it by size.

    Args:
        path: the file.
        max_bytes: the size it is rotated at.
        backups: how many rotated files are kept.
        monotonic: the clock that says when to look at the path again (`FOLLOW_SECONDS`).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backups: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._name = os.fspath(path)
        self._monotonic = monotonic
        self._look_again = -math.inf  # when the path is next stat'ed
        self._size = 0  # the file's size after this writer's last record, as far as it knows
        self._shared = True  # whether another writer may be appending: then measure first
        self._lock = threading.Lock()  # one middleware may serve loops in several threads
        self._failing = False
        self._file = _OpenFile()
        # A bare descriptor is not closed by the collector: close it with the writer.
        weakref.finalize(self, self._file.close)

    def write(self, record: Mapping[str, JsonValue]) -> None:
        """Append `record` as one line; a failed write is logged, never raised."""
        # pydantic-core's serializer, not the json module's: a third of the cost for the
        # plain values a record holds (the encoder made them so), the same compact UTF-8
        # JSON, but for a tiny float's exponent (`1e-7`, where json writes `1e-07`).
        try:
            data = to_json(record) + b"\n"
        except ValueError:
            # Text UTF-8 cannot encode (a lone surrogate): json escapes it as \udXXX, still
            # valid JSON, so the record is kept and the traced call never fails over it.
            data = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        try:
            with self._lock:
                self._append(data)
        except OSError as error:
            if not self._failing:  # log an outage once, not once per record
                logger.warning("trace file %s cannot be written: %s", self.path, error)
            self._failing = True
            return
        self._failing = False

    def close(self) -> None:
        """Close the file; the next record opens it again."""
        with self._lock:
            self._file.close()

    def _append(self, data: bytes) -> None:
        file = self._file
        if file.fd < 0 or self._monotonic() >= self._look_again:
            self._follow()
        elif self._shared:
            self._size = os.lseek(file.fd, 0, os.SEEK_END)
        if self._size and self._size + len(data) > self.max_bytes:
            self._follow()  # the real size; and another writer may have rotated it already
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
                self._reopen()
        try:
            written = os.write(file.fd, data)
            if written < len(data):  # rare (a signal, a full disk): write the rest
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(file.fd, view) :]
        except OSError:
            file.close()  # the next record starts again from a fresh open
            raise
        self._size += len(data)

    def _follow(self) -> None:
        """Reopen the path unless it names the open file (first record, moved, rotated).

        Then measure the file: bytes this writer did not write mean it is shared, and its
        size is measured before every record until a `FOLLOW_SECONDS` passes without any.
        """
        file = self._file
        try:
            status: os.stat_result | None = os.stat(self._name)
        except FileNotFoundError:
            status = None
        reopened = status is None or file.fd < 0 or (status.st_dev, status.st_ino) != file.identity
        if reopened:
            self._reopen()
        size = os.lseek(file.fd, 0, os.SEEK_END)
        self._shared = reopened or size != self._size
        self._size = size
        self._look_again = self._monotonic() + FOLLOW_SECONDS

    def _reopen(self) -> None:
        self._file.close()
        self._file.fd = fd = os.open(self._name, _OPEN_FLAGS, 0o600)
        status = os.fstat(fd)
        self._file.identity = (status.st_dev, status.st_ino)

    def _rotate(self) -> None:
        self._file.close()
        if self.backups == 0:
            os.remove(self.path)
            return
        for index in range(self.backups - 1, 0, -1):
            source = self.backup(index)
            if source.exists():
                os.replace(source, self.backup(index + 1))
        os.replace(self.path, self.backup(1))

    def backup(self, index: int) -> Path:
        """The path of the `index`-th backup: `trace.jsonl.1` is the newest."""
        return self.path.with_name(f"{self.path.name}.{index}")
