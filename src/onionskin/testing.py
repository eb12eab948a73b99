"""Helpers for testing code built on onionskin: scripted models, no network, no waiting."""

import random

from onionskin.middleware.retry import set_testing
from onionskin.runtime.models.scripted import ScriptedModel, tool_call

__all__ = ["FakeClock", "ScriptedModel", "set_testing", "tool_call"]


class FakeClock:
    """A clock that moves only when told: `advance()`, or `sleep()` which advances at once."""

    def __init__(self, start: float = 1_000.0, *, seed: int = 0) -> None:
        self._now = start
        self._random = random.Random(seed)
        self.sleeps: list[float] = []
        """Every duration `sleep()` was asked to wait, in order."""

    def monotonic(self) -> float:
        """The fake time."""
        return self._now

    def time(self) -> float:
        """The fake time, as Unix seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait and advance the clock by it, without waiting."""
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))

    def random(self) -> float:
        """A repeatable random float in [0, 1), from the clock's seed."""
        return self._random.random()
