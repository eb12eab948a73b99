"""Many processes, one budget: 4 processes x 200 concurrent calls on one Redis budget.

Each worker is a fresh process (forkserver) running its own asyncio loop, so nothing is shared but
Redis. However the calls interleave, the spend never exceeds the budget: reservations are
atomic at admission, and settling never charges more than was reserved.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

import pytest

from onionskin import BudgetExceededError, ToolCall, ToolResult
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.stores.budget import BudgetLine
from onionskin.stores.redis_budget import RedisBudgetStore

WORKERS = 4
CALLS = 200
BUDGET = Decimal("1.00")
TOOL_COST = Decimal("0.003")  # 333 calls fit in the budget; 800 are attempted
KEY = "acme:session:shared"
GUARDED_KEY = "-:session:shared"  # the middleware's key: a session outside a run, no tenant
ESTIMATE = 3_000  # micro-dollars


async def _tool_calls(url: str, prefix: str, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    store = RedisBudgetStore.from_url(url, prefix=prefix)
    config = BudgetConfig(per_session=BUDGET, tool_costs={"search": TOOL_COST})
    budget = BudgetMiddleware(config, store=store)

    async def search(call: ToolCall) -> ToolResult:
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)  # interleave with the other calls of this loop
        return ToolResult(tool_name="search", value="found")

    async def one() -> bool:
        call = ToolCall(tool_name="search", session_id="shared")
        try:
            await budget.wrap_tool_call(call, search)
        except BudgetExceededError:
            return False
        return True

    try:
        admitted = await asyncio.gather(*(one() for _ in range(CALLS)))
    finally:
        await store.aclose()
    return admitted.count(True), admitted.count(False)


async def _reserve_settle(url: str, prefix: str, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    store = RedisBudgetStore.from_url(url, prefix=prefix)
    line = BudgetLine(KEY, 1_000_000)

    async def one(index: int) -> bool:
        rid = f"w{seed}-{index}"
        if await store.reserve(rid, [line], ESTIMATE, ttl=60) is not None:
            return False
        await asyncio.sleep(0)
        await store.settle(rid, rng.randint(ESTIMATE // 2, ESTIMATE))  # the bill <= estimate
        return True

    try:
        admitted = await asyncio.gather(*(one(index) for index in range(CALLS)))
    finally:
        await store.aclose()
    return admitted.count(True), admitted.count(False)


def _worker(mode: str, url: str, prefix: str, seed: int) -> tuple[int, int]:
    run = _tool_calls if mode == "middleware" else _reserve_settle
    return asyncio.run(run(url, prefix, seed))


async def _run_workers(mode: str, url: str, prefix: str) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("forkserver")
    # The fork server imports this module once; every worker forks from it, fresh but warm.
    context.set_forkserver_preload([__name__])
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(pool, _worker, mode, url, prefix, seed) for seed in range(WORKERS)
        ]
        return list(await asyncio.gather(*futures))


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisBudgetStore]:
    store = RedisBudgetStore.from_url(redis_url, prefix=redis_prefix)
    yield store
    client = store.scripts.client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await store.aclose()


async def test_guarded_calls_in_four_processes_fill_the_budget_exactly(
    store: RedisBudgetStore, redis_url: str, redis_prefix: str
) -> None:
    counts = await _run_workers("middleware", redis_url, redis_prefix)

    admitted = sum(count for count, _ in counts)
    assert sum(refused for _, refused in counts) == WORKERS * CALLS - admitted
    # The bill equals the estimate here, so the budget fills to the last whole call.
    assert admitted == int(BUDGET / TOOL_COST)
    assert await store.spent(GUARDED_KEY) == admitted * ESTIMATE <= 1_000_000
    assert await store.held(GUARDED_KEY) == 0
    assert len(await store.ledger(GUARDED_KEY)) == admitted


async def test_spend_never_exceeds_the_budget_plus_one_reservation(
    store: RedisBudgetStore, redis_url: str, redis_prefix: str
) -> None:
    counts = await _run_workers("store", redis_url, redis_prefix)

    admitted = sum(count for count, _ in counts)
    spent = await store.spent(KEY)
    assert spent <= 1_000_000 + ESTIMATE
    assert spent <= 1_000_000  # and in fact within it: no bill exceeds its reservation
    assert admitted >= 1_000_000 // ESTIMATE  # nothing was refused while there was room
    assert admitted < WORKERS * CALLS  # the budget did run out
    assert await store.held(KEY) == 0
    ledger = await store.ledger(KEY)
    assert len(ledger) == admitted
    assert sum(ledger.values()) == spent
