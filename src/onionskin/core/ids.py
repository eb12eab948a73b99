"""Time-ordered identifiers for runs, calls and checkpoints."""

from __future__ import annotations

import itertools
import os
import time


class _IdState:
    """Per-process randomness and a counter, renewed in a forked child."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        node = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
        # The variant bits and the random node never change within a process: format once.
        self.tail = f"-{0x8000 | (node >> 48):04x}-{node & 0xFFFF_FFFF_FFFF:012x}"
        self.counter = itertools.count(int.from_bytes(os.urandom(2), "big"))


_state = _IdState()
os.register_at_fork(after_in_child=_state.renew)


def new_id() -> str:
    """Return a new UUIDv7 string: sortable by creation time, unique across processes.

    Layout (RFC 9562): 48 bits of Unix milliseconds, the version, 12 bits of a per-process
    counter (so ids made in the same millisecond still differ), the variant, and 62 random
    bits drawn once per process. Written here because `uuid.uuid7` arrives only in Python
    3.14, and drawing fresh randomness per id costs more than a whole middleware layer.
    """
    millis = time.time_ns() // 1_000_000
    sequence = next(_state.counter) & 0x0FFF
    # bytes.hex() is several times faster than int formatting with a width.
    head = ((millis << 16) | 0x7000 | sequence).to_bytes(8, "big").hex()
    return f"{head[:8]}-{head[8:12]}-{head[12:]}{_state.tail}"
