"""Many processes, one limit and one budget, admitted together: 4 processes x 50 callers.

Every process builds its guards from one `GuardConfig(redis_url=...)`, so limiter and budget
are admitted in one script. However the callers race:

* the processes together never admit more than `burst + rate * elapsed` calls, `elapsed`
  read from the Redis server's clock before the first and after the last admission;
* the spend never exceeds the budget, and every admitted call was settled (spend is
  exactly admitted x price); once the budget is spent, it holds exactly `limit / price`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from decimal import Decimal
from multiprocessing.synchronize import Barrier
from typing import Any

import redis.asyncio as aioredis

from onionskin import BudgetExceededError, RateLimitExceededError
from onionskin.middleware import BudgetConfig, GuardConfig, MiddlewarePipeline, RateLimit
from onionskin.middleware.budget import BudgetMiddleware

WORKERS = 4
CALLERS = 50
RATE = 100.0
BURST = 20
SECONDS = 0.6
PRICE = Decimal("0.001")
BUDGET = Decimal("0.05")  # fifty calls


async def work() -> str:
    return "done"


async def server_time(client: aioredis.Redis) -> float:
    seconds, microseconds = await client.time()
    return seconds + microseconds / 1_000_000


async def rate_bound(url: str, prefix: str, barrier: Barrier) -> tuple[int, float, float]:
    """Callers retry until SECONDS are up; the limiter binds, the budget is ample."""
    config = GuardConfig(
        rate_limit=RateLimit(rate=RATE, burst=BURST, per="global"),
        budget=BudgetConfig(per_tenant=Decimal(1000), tool_costs={"work": PRICE}),
        redis_url=url,
        store_prefix=prefix,
    )
    client = aioredis.Redis.from_url(url)
    loop = asyncio.get_running_loop()
    admitted = 0
    async with MiddlewarePipeline(config=config) as pipeline:
        await client.ping()
        barrier.wait(timeout=30)
        deadline = loop.time() + SECONDS

        async def caller() -> None:
            nonlocal admitted
            while (remaining := deadline - loop.time()) > 0:
                try:
                    await pipeline.execute(work)
                except RateLimitExceededError as refused:
                    # Jitter spreads the retries, so the shared server is not flooded.
                    pause = refused.retry_after + random.uniform(0, 0.05)
                    await asyncio.sleep(min(pause, remaining))
                else:
                    admitted += 1

        started = await server_time(client)
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        ended = await server_time(client)
    await client.aclose()
    return admitted, started, ended


async def budget_bound(url: str, prefix: str, barrier: Barrier) -> tuple[int, int]:
    """Every caller calls until its budget refuses; the limiter is ample."""
    config = GuardConfig(
        rate_limit=RateLimit(rate=1e6, burst=1e6, per="global"),
        budget=BudgetConfig(per_tenant=BUDGET, tool_costs={"work": PRICE}),
        redis_url=url,
        store_prefix=prefix,
    )
    admitted = refused = 0
    async with MiddlewarePipeline(config=config) as pipeline:
        barrier.wait(timeout=30)

        async def caller() -> None:
            nonlocal admitted, refused
            while True:
                try:
                    await pipeline.execute(work)
                except BudgetExceededError:
                    refused += 1
                    return
                admitted += 1

        await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return admitted, refused


def worker(url: str, prefix: str, barrier: Barrier, results: Any) -> None:
    """One process: both runs, each with its own event loop and CALLERS concurrent callers.

    `results` is a multiprocessing queue (Any: its generic type is not public).
    """
    try:
        first = asyncio.run(rate_bound(url, f"{prefix}:rate", barrier))
        second = asyncio.run(budget_bound(url, f"{prefix}:budget", barrier))
        results.put((first, second))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(repr(error))
        raise


async def spent(url: str, prefix: str) -> tuple[Decimal, int]:
    """What a run's tenant budget line holds (settled USD, micro-dollars held); then forget it."""
    config = BudgetConfig(per_tenant=BUDGET, tool_costs={"work": PRICE})
    from onionskin.stores.redis_budget import RedisBudgetStore

    store = RedisBudgetStore.from_url(url, prefix=prefix)
    budget = BudgetMiddleware(config, store=store)
    key = budget.tenant_key(None)
    total, held = await budget.spent(key), await store.held(key)
    client = store.scripts.client
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await store.aclose()
    return total, held


def test_processes_sharing_one_limit_and_one_budget_never_overrun_either(
    redis_url: str, redis_prefix: str
) -> None:
    context = multiprocessing.get_context("spawn")
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
    assert [report for report in reports if isinstance(report, str)] == []

    rate_runs = [report[0] for report in reports]
    admitted = sum(run[0] for run in rate_runs)
    elapsed = max(run[2] for run in rate_runs) - min(run[1] for run in rate_runs)
    assert admitted <= BURST + RATE * elapsed
    assert admitted > BURST  # tokens refill across processes, and were taken
    total, held = asyncio.run(spent(redis_url, f"{redis_prefix}:rate"))
    assert (total, held) == (admitted * PRICE, 0)  # every admitted call was settled once

    budget_runs = [report[1] for report in reports]
    admitted = sum(run[0] for run in budget_runs)
    assert admitted == BUDGET / PRICE
    assert sum(run[1] for run in budget_runs) == WORKERS * CALLERS  # each caller refused once
    total, held = asyncio.run(spent(redis_url, f"{redis_prefix}:budget"))
    assert (total, held) == (BUDGET, 0)
