"""Limiter and budget admitted together: Redis down, and a call cancelled while Redis answers.

With Redis down, each guard keeps its own failure policy, exactly as when the two stood
apart: the limiter fails closed first, then the budget; fail-open guards log once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from onionskin import (
    GuardStoreError,
    Message,
    ModelRequest,
    ModelResponse,
    StoreError,
    TextPart,
    Usage,
)
from onionskin.middleware import GuardConfig, MiddlewarePipeline, RateLimit
from onionskin.middleware._admission import fuse
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.middleware.rate_limit import RateLimitConfig, RateLimiterMiddleware
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.stores._redis import RedisScripts
from onionskin.stores.budget import BudgetLine, Refusal
from onionskin.stores.rate_limit import Admission, Charge
from onionskin.stores.redis_admission import RedisAdmissionStore
from onionskin.stores.redis_budget import RedisBudgetStore
from onionskin.stores.redis_rate_limit import RedisRateLimitStore
from onionskin.testing import ScriptedModel
from tests.conftest import DOWN_REDIS_URL

GUARD_LOGGER = "onionskin.guards"


def configs(limiter_open: bool, budget_open: bool) -> tuple[RateLimitConfig, BudgetConfig]:
    limit = RateLimitConfig(limits=(RateLimit(rate=1, burst=100),), fail_open=limiter_open)
    budget = BudgetConfig(
        per_tenant=Decimal(1), tool_costs={"work": Decimal("0.1")}, fail_open=budget_open
    )
    return limit, budget


async def outcome(pipeline: MiddlewarePipeline, caplog: pytest.LogCaptureFixture) -> Any:
    """What two calls came to: the guard that refused them, or how many ran; and the logs."""
    ran: list[int] = []

    async def work() -> str:
        ran.append(1)
        return "done"

    refused: list[str] = []
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        for _ in range(2):
            try:
                await pipeline.execute(work)
            except GuardStoreError as error:
                refused.append(error.guard)
    logged = sorted(r.getMessage().split(":")[0] for r in caplog.records if "failing open" in r.msg)
    caplog.clear()
    return refused, len(ran), logged


@pytest.mark.parametrize("limiter_open", [False, True])
@pytest.mark.parametrize("budget_open", [False, True])
async def test_with_redis_down_each_guard_keeps_its_own_policy(
    limiter_open: bool, budget_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    limit, budget = configs(limiter_open, budget_open)
    config = GuardConfig(rate_limit=limit, budget=budget, redis_url=DOWN_REDIS_URL)
    # Not `async with`: that pings Redis at start-up and fails (tested below); this test is
    # about Redis going down while serving.
    pipeline = MiddlewarePipeline(config=config)
    try:
        assert isinstance(pipeline.middleware[0], RateLimiterMiddleware)
        assert pipeline.middleware[0]._defer_to is pipeline.middleware[1]  # fused
        joint = await outcome(pipeline, caplog)
    finally:
        await pipeline.aclose()
    limits = RedisRateLimitStore.from_url(DOWN_REDIS_URL)
    budgets = RedisBudgetStore.from_url(DOWN_REDIS_URL)
    apart = MiddlewarePipeline(
        extra_middleware=[
            RateLimiterMiddleware(limit, store=limits),
            BudgetMiddleware(budget, store=budgets),
        ]
    )
    separate = await outcome(apart, caplog)
    await limits.aclose()
    await budgets.aclose()

    assert joint == separate
    expected = {
        (False, False): (["rate_limiter"] * 2, 0, []),
        (False, True): (["rate_limiter"] * 2, 0, []),
        (True, False): (["budget"] * 2, 0, ["rate_limiter"]),
        (True, True): ([], 2, ["budget", "rate_limiter"]),
    }
    assert joint == expected[limiter_open, budget_open]


# --- cancelled while the joint admission is on its way ---------------------------------------


class Paused:
    """A joint store that holds every admission until told to go on."""

    def __init__(self, inner: RedisAdmissionStore) -> None:
        self.inner = inner
        self.limits = inner.limits
        self.budget = inner.budget
        self.entered = asyncio.Event()
        self.go_on = asyncio.Event()

    async def admit(
        self,
        charges: Sequence[Charge],
        reservation_id: str,
        lines: Sequence[BudgetLine],
        amount_micros: int,
        ttl: float,
    ) -> tuple[Admission, Refusal | None]:
        self.entered.set()
        await self.go_on.wait()
        return await self.inner.admit(charges, reservation_id, lines, amount_micros, ttl)


@pytest.fixture
async def joint(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisAdmissionStore]:
    store = RedisAdmissionStore(RedisScripts.from_url(redis_url, prefix=redis_prefix))
    yield store
    client: aioredis.Redis = store.scripts.client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await store.aclose()


async def test_a_call_cancelled_while_admitted_holds_nothing_and_gets_its_tokens_back(
    joint: RedisAdmissionStore,
) -> None:
    model = ScriptedModel(["x"], name="m", output_price_per_mtok=10_000)
    request = ModelRequest(
        model=model, messages=[Message("user", [TextPart("hi")])], settings={"max_tokens": 50}
    )
    estimate = estimate_tokens(request.messages) + 50
    paused = Paused(joint)
    limiter = RateLimiterMiddleware(
        RateLimit(rate=1e-6, burst=estimate, unit="tokens"), store=joint.limits
    )
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1)), store=joint.budget)
    fuse(limiter, budget, paused)
    ran: list[ModelRequest] = []

    async def model_call(request: ModelRequest) -> ModelResponse:
        ran.append(request)
        return ModelResponse(
            message=Message("assistant", [TextPart("x")]),
            usage=Usage(input_tokens=0, output_tokens=1),
        )

    async def guarded(request: ModelRequest) -> ModelResponse:
        async def inner(request: ModelRequest) -> ModelResponse:
            return await budget.wrap_model_call(request, model_call)

        return await limiter.wrap_model_call(request, inner)

    task = asyncio.create_task(guarded(request))
    await paused.entered.wait()
    task.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the budget, which waits for the store
    paused.go_on.set()  # ... whose admission lands after all
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ran == []
    key = budget.tenant_key(None)
    assert (await joint.budget.held(key), await joint.budget.spent(key)) == (0, 0)
    # The whole bucket is free again: the next call needs every token of it.
    await guarded(request)
    assert len(ran) == 1


async def test_a_configured_redis_that_is_down_fails_start_up_loudly(redis_url: str) -> None:
    limit, budget = configs(True, True)  # fail-open while serving does not excuse start-up
    down = GuardConfig(
        rate_limit=limit, budget=budget, redis_url="redis://:secret-pw@127.0.0.1:1/3"
    )
    with pytest.raises(StoreError, match=r"redis at 127.0.0.1:1/3 is unreachable") as failed:
        async with MiddlewarePipeline(config=down):
            pytest.fail("entered a pipeline whose Redis is down")
    assert "secret-pw" not in str(failed.value)
    async with MiddlewarePipeline(config=GuardConfig(rate_limit=limit, redis_url=redis_url)) as up:
        await up.check()
    async with MiddlewarePipeline(config=GuardConfig(rate_limit=limit)) as memory:
        await memory.check()  # nothing configured: nothing to ping
