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
        self.millis = -1
        self.head = ""
        self.used = 0  # ids made in `millis`: at most 4,096, the sequence's size


# The version digit and the 12-bit sequence, as the id writes them: looked up, not formatted.
_SEQUENCE = tuple(f"7{n:03x}" for n in range(0x1000))


_state = _IdState()
os.register_at_fork(after_in_child=_state.renew)


def new_id() -> str:
    """Return a new UUIDv7 string: sortable by creation time, unique across processes.

    Layout (RFC 9562): 48 bits of Unix milliseconds, the version, 12 bits of a per-process
    counter (so ids made in the same millisecond still differ), the variant, and 62 random
    bits drawn once per process. Past 4,096 ids in one millisecond the next millisecond is
    used, and a clock that steps back is not followed, so no id repeats within a process.
    Written here because `uuid.uuid7` arrives only in Python 3.14, and drawing fresh
    randomness per id costs more than a whole middleware layer.
    """
    state = _state
    millis = time.time_ns() // 1_000_000
    if millis > state.millis or state.used >= 0x1000:
        # A new millisecond, or this one's 4,096 sequence numbers are used up: then the
        # next millisecond is borrowed (RFC 9562's counter overflow), so no id repeats.
        # The clock stepping back keeps the last millisecond: ids still sort in order made.
        millis = max(millis, state.millis + (state.used >= 0x1000))
        digits = millis.to_bytes(6, "big").hex()  # bytes.hex(): faster than a width format
        state.millis, state.head, state.used = millis, f"{digits[:8]}-{digits[8:]}-", 0
    state.used += 1
    return state.head + _SEQUENCE[next(state.counter) & 0x0FFF] + state.tail
