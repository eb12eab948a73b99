"""A rate limiter and a budget on one Redis: one round trip to admit, each guard's own answers.

`GuardConfig(redis_url=...)` links the two (`middleware/_admission.py`); these tests run
them as it builds them, and check what each guard raises, waits, falls back to, settles
and refunds. Buckets regain a token every ~11 days (`RATE`) unless a test says otherwise,
so the Redis server's clock, which no test can move, never changes an answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from onionskin import (
    BudgetExceededError,
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    RateLimitExceededError,
    TextPart,
    Usage,
)
from onionskin.middleware import CircuitBreakerConfig, GuardConfig, MiddlewarePipeline, RateLimit
from onionskin.middleware._admission import fuse
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.middleware.rate_limit import RateLimitConfig, RateLimiterMiddleware
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.stores._redis import RedisScripts
from onionskin.stores.rate_limit import Charge, MemoryRateLimitStore
from onionskin.stores.redis_admission import RedisAdmissionStore
from onionskin.testing import FakeClock, ScriptedModel

RATE = 1e-6
PRICE = Decimal("0.10")


class Phases:
    """Every command sent to Redis, split at the moment the guarded function runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.before: list[str] = []
        self.after: list[str] = []
        self._now = self.before
        # Typed by hand: redis-py leaves execute_command unannotated.
        original: Callable[..., Awaitable[Any]] = aioredis.Redis.execute_command
        phases = self

        async def counted(client: aioredis.Redis, *args: Any, **options: Any) -> Any:
            phases._now.append(str(args[0]))
            return await original(client, *args, **options)

        monkeypatch.setattr(aioredis.Redis, "execute_command", counted)

    def running(self) -> None:
        self._now = self.after

    def reset(self) -> None:
        self.before.clear()
        self.after.clear()
        self._now = self.before


@pytest.fixture
async def cleanup(redis_url: str, redis_prefix: str) -> AsyncIterator[None]:
    yield
    client = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def joint(redis_url: str, redis_prefix: str, cleanup: None) -> AsyncIterator[Any]:
    store = RedisAdmissionStore(RedisScripts.from_url(redis_url, prefix=redis_prefix))
    yield store
    await store.aclose()


def guard_config(url: str, prefix: str, **options: Any) -> GuardConfig:
    options.setdefault("rate_limit", RateLimit(rate=RATE, burst=2, per="global"))
    options.setdefault("budget", BudgetConfig(per_tenant=Decimal("1"), tool_costs={"work": PRICE}))
    return GuardConfig(redis_url=url, store_prefix=prefix, **options)


def budget_of(pipeline: MiddlewarePipeline) -> BudgetMiddleware:
    [budget] = [layer for layer in pipeline.middleware if isinstance(layer, BudgetMiddleware)]
    return budget


async def tokens_left(scripts: RedisScripts, key: str, burst: float) -> int:
    """How many one-token charges bucket `key` admits now (taking them)."""
    store = RedisAdmissionStore(scripts).limits
    taken = 0
    while (await store.acquire([Charge(key=key, rate=RATE, burst=burst, cost=1)])).allowed:
        taken += 1
    return taken


@pytest.mark.parametrize("breaker", [False, True])
async def test_guard_config_admits_limiter_and_budget_in_one_round_trip(
    redis_url: str, redis_prefix: str, cleanup: None, monkeypatch: pytest.MonkeyPatch, breaker: bool
) -> None:
    phases = Phases(monkeypatch)
    rate_limit = RateLimit(rate=1e6, burst=1e6, per="tool")
    config = guard_config(
        redis_url,
        redis_prefix,
        rate_limit=rate_limit,
        circuit_breaker=CircuitBreakerConfig() if breaker else None,
    )

    async def work() -> str:
        phases.running()
        return "done"

    async with MiddlewarePipeline(config=config) as pipeline:
        await pipeline.execute(work)  # loads the scripts
        phases.reset()
        assert (await pipeline.execute(work)).value == "done"
    # Admission: the breaker's (if any) and ONE for limiter + budget; after: settle (+ record).
    assert phases.before == ["EVALSHA"] * (2 if breaker else 1)
    assert phases.after == ["EVALSHA"] * (2 if breaker else 1)


async def test_a_rate_limited_call_raises_the_limiters_error_and_reserves_nothing(
    redis_url: str, redis_prefix: str, cleanup: None
) -> None:
    calls: list[int] = []
    config = guard_config(redis_url, redis_prefix, rate_limit=RateLimit(rate=RATE, burst=1))

    async def work() -> str:
        calls.append(1)
        return "done"

    async with MiddlewarePipeline(config=config) as pipeline:
        await pipeline.execute(work)
        with pytest.raises(RateLimitExceededError) as refused:
            await pipeline.execute(work)
        budget = budget_of(pipeline)
        key = budget.tenant_key(None)
        assert (await budget.spent(key), await budget.store.held(key)) == (PRICE, 0)
    assert refused.value.key == "tenant:-:all-calls"
    assert refused.value.retry_after > 1000
    assert calls == [1]


async def test_a_call_over_its_budget_raises_the_budget_error_and_takes_no_token(
    redis_url: str, redis_prefix: str, cleanup: None
) -> None:
    budget = BudgetConfig(per_tenant=Decimal("0.15"), tool_costs={"work": PRICE})
    config = guard_config(redis_url, redis_prefix, budget=budget)

    async def work() -> str:
        return "done"

    async with MiddlewarePipeline(config=config) as pipeline:
        await pipeline.execute(work)
        for _ in range(3):
            with pytest.raises(BudgetExceededError) as refused:
                await pipeline.execute(work)
    assert (refused.value.scope, refused.value.limit) == ("tenant", Decimal("0.15"))
    scripts = RedisScripts.from_url(redis_url, prefix=redis_prefix)
    assert await tokens_left(scripts, "global:all-calls", burst=2) == 1  # of two: one call ran
    await scripts.aclose()


async def test_the_limiter_waits_up_to_max_wait_on_its_clock_then_refuses(
    joint: RedisAdmissionStore,
) -> None:
    clock = FakeClock()
    limit = RateLimitConfig(limits=(RateLimit(rate=1 / 3, burst=1),), max_wait=5.0)
    budget = BudgetConfig(per_tenant=Decimal(1), tool_costs={"work": PRICE})
    pipeline = fused(joint, limit, budget, clock=clock)
    await pipeline.execute(work)
    with pytest.raises(RateLimitExceededError) as refused:
        await pipeline.execute(work)
    # Waited 3 s for the token; Redis, whose clock did not move, still had none: refused.
    assert clock.sleeps == [pytest.approx(3.0, abs=0.05)]
    assert refused.value.retry_after == pytest.approx(3.0, abs=0.05)
    spender = budget_of(pipeline)
    assert await spender.store.held(spender.tenant_key(None)) == 0


class RefillingClock(FakeClock):
    """A fake clock whose every wait ends with the limiter's bucket full again."""

    def __init__(self, client: aioredis.Redis, key: str) -> None:
        super().__init__()
        self.client, self.key = client, key

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await self.client.delete(self.key)


async def test_a_waiting_call_goes_through_once_its_bucket_has_refilled(
    joint: RedisAdmissionStore,
) -> None:
    clock = RefillingClock(
        joint.scripts.client, joint.scripts.key("ratelimit", "tenant:-:all-calls")
    )
    limit = RateLimitConfig(limits=(RateLimit(rate=1 / 3, burst=1),), max_wait=5.0)
    budget = BudgetConfig(per_tenant=Decimal(1), tool_costs={"work": PRICE})
    pipeline = fused(joint, limit, budget, clock=clock)
    await pipeline.execute(work)
    assert (await pipeline.execute(work)).value == "done"
    assert len(clock.sleeps) == 1
    spender = budget_of(pipeline)
    assert await spender.spent(spender.tenant_key(None)) == 2 * PRICE


async def test_a_call_its_budget_does_not_price_still_takes_its_tokens(
    redis_url: str, redis_prefix: str, cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    phases = Phases(monkeypatch)
    config = guard_config(redis_url, redis_prefix, rate_limit=RateLimit(rate=RATE, burst=1))

    async def free() -> str:
        phases.running()
        return "done"

    async with MiddlewarePipeline(config=config) as pipeline:
        assert (await pipeline.execute(free)).value == "done"
        assert phases.after == []  # nothing reserved, nothing to settle
        with pytest.raises(RateLimitExceededError):
            await pipeline.execute(free)


@pytest.mark.parametrize("exhausted", [True, False])
async def test_a_call_over_its_per_call_limit_lets_the_limiter_answer_first(
    redis_url: str, redis_prefix: str, cleanup: None, exhausted: bool
) -> None:
    budget = BudgetConfig(
        per_call=Decimal("0.05"), per_tenant=Decimal(1), tool_costs={"work": PRICE}
    )
    config = guard_config(redis_url, redis_prefix, budget=budget)
    expected = RateLimitExceededError if exhausted else BudgetExceededError
    async with MiddlewarePipeline(config=config) as pipeline:
        if exhausted:
            scripts = RedisScripts.from_url(redis_url, prefix=redis_prefix)
            assert await tokens_left(scripts, "global:all-calls", burst=2) == 2
            await scripts.aclose()
        with pytest.raises(expected):
            await pipeline.execute(work)


# --- model calls: fallback, approval, token limits ---------------------------------------------


def model_request(model: ScriptedModel, max_tokens: int = 10) -> ModelRequest:
    return ModelRequest(
        model=model,
        messages=[Message("user", [TextPart("hello")])],
        settings={"max_tokens": max_tokens},
    )


def answering(
    seen: list[ModelRequest], output_tokens: int = 5
) -> Callable[[ModelRequest], Awaitable[ModelResponse]]:
    async def next(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return ModelResponse(
            message=Message("assistant", [TextPart("hi")]),
            usage=Usage(input_tokens=0, output_tokens=output_tokens),
        )

    return next


def linked(
    joint: RedisAdmissionStore, limit: Any, budget: BudgetConfig, clock: Any = None
) -> tuple[RateLimiterMiddleware, BudgetMiddleware]:
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    limiter = RateLimiterMiddleware(limit, store=joint.limits, **options)
    spender = BudgetMiddleware(budget, store=joint.budget, **options)
    fuse(limiter, spender, joint)
    return limiter, spender


async def through(
    guards: tuple[RateLimiterMiddleware, BudgetMiddleware],
    request: ModelRequest,
    next: Callable[[ModelRequest], Awaitable[ModelResponse]],
) -> ModelResponse:
    limiter, spender = guards

    async def inner(request: ModelRequest) -> ModelResponse:
        return await spender.wrap_model_call(request, next)

    return await limiter.wrap_model_call(request, inner)


async def test_a_refused_model_call_falls_back_and_takes_the_original_models_tokens(
    joint: RedisAdmissionStore,
) -> None:
    cheap = ScriptedModel(["x"], name="small", output_price_per_mtok=10_000)  # $0.01 a token
    big = ScriptedModel(["x"], name="big", output_price_per_mtok=100_000)  # $0.10 a token
    budget = BudgetConfig(per_tenant=Decimal("0.50"), on_exceeded="fallback", fallback_model=cheap)
    guards = linked(joint, RateLimit(rate=RATE, burst=1, per="model"), budget)
    seen: list[ModelRequest] = []

    await through(guards, model_request(big), answering(seen))

    assert [request.model for request in seen] == [cheap]
    assert await guards[1].spent(guards[1].tenant_key(None)) == Decimal("0.05")
    # The limiter charged the call it was given, as when it stood alone: one token of "big".
    with pytest.raises(RateLimitExceededError) as refused:
        await through(guards, model_request(big), answering(seen))
    assert refused.value.key == "tenant:-:model:big:model-calls"


async def test_an_approved_call_goes_through_takes_its_token_and_is_counted(
    joint: RedisAdmissionStore,
) -> None:
    asked: list[BudgetExceededError] = []

    def approve(refusal: BudgetExceededError) -> bool:
        asked.append(refusal)
        return True

    budget = BudgetConfig(
        per_tenant=Decimal("0.15"),
        tool_costs={"work": PRICE},
        on_exceeded="approve",
        approve=approve,
    )
    limit = RateLimit(rate=RATE, burst=2)
    pipeline = MiddlewarePipeline(extra_middleware=linked(joint, limit, budget))
    for _ in range(2):
        assert (await pipeline.execute(work)).value == "done"
    assert len(asked) == 1
    spender = budget_of(pipeline)
    assert await spender.spent(spender.tenant_key(None)) == 2 * PRICE
    with pytest.raises(RateLimitExceededError):  # both calls took their token
        await pipeline.execute(work)
    assert len(asked) == 1  # the limiter answered first: no approval was asked for


async def test_token_limits_are_reserved_with_the_budget_and_reconciled_to_the_usage(
    joint: RedisAdmissionStore,
) -> None:
    model = ScriptedModel(["x"], name="m", output_price_per_mtok=10_000)
    request = model_request(model, max_tokens=100)
    estimate = estimate_tokens(request.messages) + 100
    # Room for one estimate and a bit: a second call fits only if the first was reconciled.
    limit = RateLimit(rate=RATE, burst=estimate + 20, unit="tokens")
    guards = linked(joint, limit, BudgetConfig(per_tenant=Decimal(10)))
    seen: list[ModelRequest] = []
    await through(guards, request, answering(seen, output_tokens=15))
    await through(guards, request, answering(seen, output_tokens=15))
    with pytest.raises(RateLimitExceededError):
        await through(guards, request, answering(seen, output_tokens=15))
    assert len(seen) == 2


async def test_a_failed_model_call_releases_its_hold_and_gets_its_tokens_back(
    joint: RedisAdmissionStore,
) -> None:
    model = ScriptedModel(["x"], name="m", output_price_per_mtok=10_000)
    request = model_request(model, max_tokens=100)
    estimate = estimate_tokens(request.messages) + 100
    guards = linked(
        joint,
        RateLimit(rate=RATE, burst=estimate, unit="tokens"),
        BudgetConfig(per_tenant=Decimal(1)),
    )

    async def failing(request: ModelRequest) -> ModelResponse:
        raise TimeoutError("provider timed out")

    for _ in range(3):  # each attempt would need the whole bucket
        with pytest.raises(TimeoutError):
            await through(guards, request, failing)
    key = guards[1].tenant_key(None)
    assert (await guards[1].spent(key), await joint.budget.held(key)) == (Decimal(0), 0)


def test_fuse_refuses_guards_that_keep_their_state_elsewhere(joint: RedisAdmissionStore) -> None:
    limiter = RateLimiterMiddleware(RateLimit(rate=1), store=MemoryRateLimitStore())
    spender = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1)), store=joint.budget)
    with pytest.raises(ConfigError, match=r"store\.limits"):
        fuse(limiter, spender, joint)


# --- helpers for the fused pipelines above ------------------------------------------------------


async def work() -> str:
    return "done"


def fused(
    joint: RedisAdmissionStore, limit: Any, budget: BudgetConfig, clock: Any = None
) -> MiddlewarePipeline:
    clock = clock if clock is not None else FakeClock()
    return MiddlewarePipeline(extra_middleware=linked(joint, limit, budget, clock=clock))


async def test_a_limiter_whose_budget_layer_is_missing_counts_its_calls_late(
    joint: RedisAdmissionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a hand-made chain can leave the budget out: the call is counted, and logged."""
    limiter, _ = linked(joint, RateLimit(rate=RATE, burst=1), BudgetConfig(per_tenant=Decimal(1)))
    pipeline = MiddlewarePipeline(extra_middleware=[limiter])
    with caplog.at_level("WARNING", logger="onionskin.guards"):
        assert (await pipeline.execute(work)).value == "done"
    assert "was not in the chain" in caplog.text
    assert await tokens_left(joint.scripts, "tenant:-:all-calls", burst=1) == 0  # taken late
