from __future__ import annotations

import os
import time
import uuid

import pytest

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
