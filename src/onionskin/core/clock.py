"""Time for guards: an injected `Clock`, so tests drive state machines without waiting."""

from __future__ import annotations

import asyncio
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


SYSTEM_CLOCK = SystemClock()
