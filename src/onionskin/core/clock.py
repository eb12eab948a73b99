"""Time and chance for guards: an injected `Clock`, so tests drive them without waiting."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol


class Clock(Protocol):
    """Where guards read the time and wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and windows)."""
        ...

    def time(self) -> float:
        """Unix seconds (for records and calendar periods)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...

    def random(self) -> float:
        """A random float in [0, 1) (for jitter): injected so tests can make it repeatable."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    def time(self) -> float:
        """`time.time()`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep(seconds)`."""
        await asyncio.sleep(seconds)

    def random(self) -> float:
        """`random.random()`."""
        return random.random()  # jitter, not cryptography


SYSTEM_CLOCK = SystemClock()
