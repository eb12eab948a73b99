from __future__ import annotations

import os
import time
import uuid

import pytest

from onionskin.core import ids as id_module
from onionskin.core.ids import new_id


def test_ids_are_uuid7_and_unique() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_sort_by_creation_time() -> None:
    first = new_id()
    millis = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == millis:
        pass
    second = new_id()
    assert first < second
    assert int(first.replace("-", "")[:12], 16) <= millis


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_new_randomness() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[-17:] != new_id()[-17:]


def test_more_ids_in_one_millisecond_than_the_sequence_holds_still_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        id_module, "_state", id_module._IdState()
    )  # undone after: later ids use now
    # One instant ahead of every id made so far: every id in one millisecond.
    frozen = (time.time_ns() // 1_000_000 + 60_000) * 1_000_000
    monkeypatch.setattr(time, "time_ns", lambda: frozen)
    ids = [new_id() for _ in range(3 * 4096 + 5)]
    assert len(set(ids)) == len(ids)
    millis = [int(i.replace("-", "")[:12], 16) for i in ids]
    assert millis[0] == frozen // 1_000_000
    assert millis == sorted(millis)  # overflow borrows the next millisecond, in order
    assert millis[-1] == frozen // 1_000_000 + 3


def test_a_clock_stepping_back_does_not_make_ids_sort_backwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        id_module, "_state", id_module._IdState()
    )  # undone after: later ids use now
    now = [(time.time_ns() // 1_000_000 + 120_000) * 1_000_000]
    monkeypatch.setattr(time, "time_ns", lambda: now[0])
    first = new_id()
    now[0] -= 400 * 1_000_000  # NTP steps the clock back 400 ms
    second = new_id()
    assert second[:13] == first[:13]  # still the last millisecond
    assert uuid.UUID(second).version == 7
