"""`GuardConfig` builds the built-in guards in the seed's order, from shorthands or configs."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from onionskin import (
    BudgetExceededError,
    CircuitOpenError,
    ConfigError,
    GuardTimeoutError,
    InvalidInputError,
    RateLimitExceededError,
    ToolCall,
    ToolResult,
)
from onionskin.middleware import (
    BudgetConfig,
    CircuitBreakerConfig,
    GuardConfig,
    HallucinationConfig,
    MiddlewarePipeline,
    RateLimit,
    RetryConfig,
    TraceConfig,
    ValidationConfig,
    guard,
)
from onionskin.testing import FakeClock

SEED_ORDER = [
    "CircuitBreakerMiddleware",
    "RateLimiterMiddleware",
    "BudgetMiddleware",
    "ValidationMiddleware",
    "HallucinationMiddleware",
    "RetryMiddleware",
    "TimeoutMiddleware",
    "TraceMiddleware",
    "HookMiddleware",
]


def test_every_builtin_is_built_in_the_seed_order(tmp_path: Path) -> None:
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimit(rate=10, burst=10),
        budget=BudgetConfig(per_run=Decimal("1")),
        validate_input=True,
        hallucination=HallucinationConfig(),
        max_retries=2,
        timeout=5.0,
        trace=TraceConfig(path=tmp_path / "trace.jsonl", otel=False),
        before_call=lambda call: None,
    )
    assert [type(layer).__name__ for layer in config.build()] == SEED_ORDER
    assert GuardConfig().build() == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"circuit_breaker": {"failure_threshold": 2}}, "circuit_breaker"),
        ({"rate_limit": 10}, "rate_limit"),
        ({"budget": {"per_run": 1}}, "budget"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"validate_input": "yes"}, "validate_input"),
        ({"before_call": "print"}, "before_call"),
        ({"redis_url": "http://localhost"}, "redis_url"),
        ({"store_prefix": ""}, "store_prefix"),
        ({"retry": RetryConfig(), "max_retries": 2}, "not both"),
        ({"validation": ValidationConfig(), "validate_input": True}, "not both"),
    ],
)
def test_bad_values_are_refused_naming_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        GuardConfig(**options)


async def test_validate_input_checks_arguments_against_the_type_hints() -> None:
    calls: list[int] = []

    @guard(validate_input=True)
    async def reserve(seats: int, *, note: str = "") -> int:
        calls.append(seats)
        return seats

    assert await reserve(2) == 2
    with pytest.raises(InvalidInputError) as refused:
        await reserve("many")  # type: ignore[arg-type]
    assert refused.value.errors[0][0] == "seats"
    assert calls == [2]


async def test_max_retries_retries_transient_failures_on_the_clock() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    @guard(max_retries=2, clock=clock)
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert await flaky() == "ok"
    assert len(attempts) == 3
    assert len(clock.sleeps) == 2


async def test_the_breaker_counts_a_retried_call_once() -> None:
    """The breaker sits outside retry: three attempts are one failure of the call."""
    clock = FakeClock()
    attempts: list[int] = []
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60),
        max_retries=2,
        clock=clock,
    )

    async def down() -> None:
        attempts.append(1)
        raise ConnectionError("down")

    pipeline = MiddlewarePipeline(config=config)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await pipeline.execute(down)
    assert len(attempts) == 6
    with pytest.raises(CircuitOpenError):
        await pipeline.execute(down)
    assert len(attempts) == 6


async def test_timeout_cancels_the_call() -> None:
    cancelled = asyncio.Event()

    @guard(timeout=0.01)
    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(GuardTimeoutError):
        await hangs()
    assert cancelled.is_set()


async def test_hooks_run_innermost_and_may_replace_the_result() -> None:
    seen: list[str] = []

    def before(call: ToolCall) -> None:
        seen.append(call.tool_name)

    async def after(call: ToolCall, result: ToolResult) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=result.value.upper())

    @guard(before_call=before, after_call=after)
    async def greet(name: str) -> str:
        return f"hello {name}"

    assert await greet("ann") == "HELLO ANN"
    assert seen == ["greet"]


async def test_trace_writes_one_record_per_attempt(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    attempts: list[int] = []

    @guard(max_retries=1, trace=TraceConfig(path=path, otel=False), clock=FakeClock())
    async def lookup(order_id: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise TimeoutError("slow")
        return "shipped"

    assert await lookup("A1") == "shipped"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 2
    assert all(record["name"] == "lookup" for record in records)


async def test_a_redis_limit_is_shared_by_every_pipeline_on_the_url(
    redis_url: str, redis_prefix: str
) -> None:
    config = GuardConfig(
        rate_limit=RateLimit(rate=0.001, burst=2, per="global"),
        redis_url=redis_url,
        store_prefix=redis_prefix,
    )

    async def work() -> str:
        return "done"

    async with (
        MiddlewarePipeline(config=config) as first,
        MiddlewarePipeline(config=config) as second,
    ):
        assert (await first.execute(work)).value == "done"
        assert (await second.execute(work)).value == "done"
        with pytest.raises(RateLimitExceededError) as refused:
            await first.execute(work)
    assert refused.value.retry_after > 0


async def test_a_redis_budget_is_shared_by_every_pipeline_on_the_url(
    redis_url: str, redis_prefix: str
) -> None:
    budget = BudgetConfig(per_tenant=Decimal("0.25"), tool_costs={"work": Decimal("0.10")})
    config = GuardConfig(budget=budget, redis_url=redis_url, store_prefix=redis_prefix)

    async def work() -> str:
        return "done"

    async with (
        MiddlewarePipeline(config=config) as first,
        MiddlewarePipeline(config=config) as second,
    ):
        assert (await first.execute(work)).value == "done"
        assert (await second.execute(work)).value == "done"
        with pytest.raises(BudgetExceededError) as refused:
            await first.execute(work)
    assert refused.value.limit == Decimal("0.25")
