"""The two backends every store contract suite runs on: memory on a FakeClock, and Redis.

Redis reads its own clock (`TIME`), which no test can move, so its `advance` really waits;
suites keep those waits to milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest

from onionskin.stores._redis import RedisScripts
from onionskin.testing import FakeClock

S = TypeVar("S")


@dataclass
class Backend(Generic[S]):
    store: S
    advance: Callable[[float], Awaitable[None]]


async def open_backend(
    request: pytest.FixtureRequest,
    memory: Callable[[FakeClock], S],
    redis: Callable[[RedisScripts], S],
) -> AsyncIterator[Backend[S]]:
    """Yield the store `request.param` names; a Redis store's keys are deleted afterwards."""
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        yield Backend(memory(clock), advance)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    scripts = RedisScripts.from_url(url, prefix=prefix)
    yield Backend(redis(scripts), asyncio.sleep)
    async for key in scripts.client.scan_iter(match=f"{prefix}:*"):
        await scripts.client.delete(key)
    await scripts.aclose()
