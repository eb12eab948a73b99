"""Many processes, one limit: 4 processes x 200 concurrent callers on one Redis bucket.

However the callers race, the processes together never admit more than
`burst + rate * elapsed`, with `elapsed` read from the Redis server's clock (`TIME`)
before the first and after the last acquisition.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import redis.asyncio as redis

from onionskin import RateLimitExceededError, ToolCall, ToolResult
from onionskin.middleware.rate_limit import RateLimit, RateLimiterMiddleware
from onionskin.stores._redis import RedisScripts
from onionskin.stores.redis_rate_limit import RedisRateLimitStore

WORKERS = 4
CALLERS = 200
RATE = 100.0
BURST = 20
SECONDS = 0.6


async def server_time(client: redis.Redis) -> float:
    seconds, microseconds = await client.time()
    return seconds + microseconds / 1_000_000


async def answer(call: ToolCall) -> ToolResult:
    return ToolResult(tool_name=call.tool_name, value="ok")


async def hammer(url: str, prefix: str, barrier: Barrier) -> tuple[int, float, float]:
    """Run CALLERS concurrent callers for SECONDS; count admissions, with server times."""
    # A blocking pool: 200 callers share 32 connections instead of opening 200 each.
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=32, timeout=10)
    client = redis.Redis(connection_pool=pool)
    store = RedisRateLimitStore(RedisScripts(client, prefix=prefix))
    limiter = RateLimiterMiddleware(RateLimit(rate=RATE, burst=BURST, per="global"), store=store)
    call = ToolCall(tool_name="search")
    await client.ping()
    barrier.wait(timeout=30)  # every process is connected: start together
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SECONDS
    admitted = 0

    async def caller() -> None:
        nonlocal admitted
        while (remaining := deadline - loop.time()) > 0:
            try:
                await limiter.wrap_tool_call(call, answer)
            except RateLimitExceededError as refused:
                # Jitter spreads the retries, so the shared server is not flooded.
                await asyncio.sleep(min(refused.retry_after + random.uniform(0, 0.25), remaining))
            else:
                admitted += 1

    started = await server_time(client)
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    ended = await server_time(client)
    await client.aclose()
    await pool.aclose()
    return admitted, started, ended


def worker(url: str, prefix: str, barrier: Barrier, results: Any) -> None:
    """One process: its own event loop and CALLERS concurrent acquisitions.

    `results` is a multiprocessing queue (Any: its generic type is not public).
    """
    try:
        results.put(asyncio.run(hammer(url, prefix, barrier)))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(repr(error))
        raise


def test_processes_sharing_one_limit_never_admit_more_than_it_allows(
    redis_url: str, redis_prefix: str
) -> None:
    context = multiprocessing.get_context("forkserver")
    # The fork server imports this module once; each worker then starts as a cheap fork of it.
    context.set_forkserver_preload([__name__])
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(redis_url, redis_prefix, barrier, results))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():  # only after a failure above
                process.terminate()
    failures = [report for report in reports if isinstance(report, str)]
    assert failures == []
    admitted = sum(report[0] for report in reports)
    elapsed = max(report[2] for report in reports) - min(report[1] for report in reports)
    allowed = BURST + RATE * elapsed
    assert admitted <= allowed
    # The limiter also really admits beyond its burst: its tokens refill across processes.
    # (Only "more than the burst": how many more depends on how much CPU the workers got.)
    assert admitted > BURST
    assert all(report[0] > 0 for report in reports)


@pytest.fixture(autouse=True)
def _forget_the_bucket(redis_url: str, redis_prefix: str) -> Iterator[None]:
    """The bucket expires by itself within seconds; delete it at once all the same."""
    yield

    async def forget() -> None:
        client = redis.Redis.from_url(redis_url)
        await client.delete(f"{redis_prefix}:ratelimit:global:all-calls")
        await client.aclose()

    asyncio.run(forget())
