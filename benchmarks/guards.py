"""What the guards cost per call: the full built-in stack against the bare call, same run.

Subjects, each calling the same async function `lookup(order_id)` once per call:

* `bare`: `await lookup(order_id="A1")`, the floor;
* `pipeline`: `MiddlewarePipeline()` with no guards (the chain, the ToolCall, the result);
* `guard:<name>`: one built-in alone, to see where the time goes;
* `full`: every built-in at once on memory stores: circuit breaker, rate limiter, budget,
  validation, hallucination, retry, timeout, trace (a JSONL file in a temporary
  directory, OpenTelemetry through the API's no-op tracer), hooks, PII redaction and a
  call limit. Every guard admits every call, so the figure is the cost of checking.
* `redis` (`--redis`; `ONIONSKIN_REDIS_URL`): breaker, limiter and budget on Redis as one
  `GuardConfig(redis_url=...)` builds them, and limiter + budget alone (the issue: "a
  Redis-backed admission (limiter + budget) costs one round trip"), with the commands each
  call sends to Redis, split into admission (before the function runs) and after the call
  (settle, token adjustment, breaker record).

Each subject runs `--iterations` calls per repeat; the best of `--repeats` repeats is kept,
round-robin across subjects so that machine noise hits them alike. Figures are µs per call;
"added" is the subject minus `bare` from the same run.

Usage: python benchmarks/guards.py [--json] [--quick] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from onionskin.middleware import (
    CallLimitConfig,
    CallLimitMiddleware,
    CircuitBreakerConfig,
    GuardConfig,
    HallucinationConfig,
    MiddlewarePipeline,
    PIIRedactionConfig,
    PIIRedactionMiddleware,
    RateLimit,
    TraceConfig,
)
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware

Subject = Callable[[], Awaitable[object]]


async def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


def _no_hook(call: object) -> None:
    return None


def _no_after(call: object, result: object) -> None:
    return None


def _budget() -> BudgetMiddleware:
    config = BudgetConfig(per_tenant=Decimal(10**9), tool_costs={"lookup": Decimal("0.0001")})
    return BudgetMiddleware(config)


def guard_configs(trace_dir: Path) -> dict[str, GuardConfig]:
    """One config per built-in that GuardConfig builds, each alone."""
    return {
        "circuit_breaker": GuardConfig(circuit_breaker=CircuitBreakerConfig()),
        "rate_limit": GuardConfig(rate_limit=RateLimit(rate=1e12, burst=1e12, per="tool")),
        "validation": GuardConfig(validate_input=True, validate_output=True),
        "hallucination": GuardConfig(hallucination=HallucinationConfig()),
        "retry": GuardConfig(max_retries=2),
        "timeout": GuardConfig(timeout=30.0),
        "trace": GuardConfig(trace=TraceConfig(path=trace_dir / "alone.jsonl")),
        "hooks": GuardConfig(before_call=_no_hook, after_call=_no_after),
    }


def full_pipeline(trace_dir: Path) -> MiddlewarePipeline:
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimit(rate=1e12, burst=1e12, per="tool"),
        validate_input=True,
        validate_output=True,
        hallucination=HallucinationConfig(),
        max_retries=2,
        timeout=30.0,
        trace=TraceConfig(path=trace_dir / "full.jsonl"),
        before_call=_no_hook,
        after_call=_no_after,
    )
    extras = [
        _budget(),
        PIIRedactionMiddleware(PIIRedactionConfig()),
        CallLimitMiddleware(CallLimitConfig(max_tool_calls=10**12)),
    ]
    return MiddlewarePipeline(config=config, extra_middleware=extras)


def subjects(trace_dir: Path) -> dict[str, Subject]:
    kwargs = {"order_id": "A1"}
    found: dict[str, Subject] = {"bare": lambda: lookup(**kwargs)}
    empty = MiddlewarePipeline()
    found["pipeline"] = lambda: empty.execute(lookup, kwargs=kwargs)
    for name, config in guard_configs(trace_dir).items():
        pipeline = MiddlewarePipeline(config=config)
        found[f"guard:{name}"] = _execute(pipeline, kwargs)
    for name, middleware in (
        ("budget", _budget()),
        ("pii", PIIRedactionMiddleware(PIIRedactionConfig())),
        ("call_limit", CallLimitMiddleware(CallLimitConfig(max_tool_calls=10**12))),
    ):
        found[f"guard:{name}"] = _execute(MiddlewarePipeline(extra_middleware=[middleware]), kwargs)
    found["full"] = _execute(full_pipeline(trace_dir), kwargs)
    return found


def _execute(pipeline: MiddlewarePipeline, kwargs: dict[str, str]) -> Subject:
    return lambda: pipeline.execute(lookup, kwargs=kwargs)


async def time_once(subject: Subject, iterations: int) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(iterations):
            await subject()
        return (time.perf_counter() - started) / iterations * 1e6
    finally:
        gc.enable()


async def measure(found: dict[str, Subject], iterations: int, repeats: int) -> dict[str, float]:
    for subject in found.values():  # warm up: imports, caches, first file open
        await time_once(subject, min(iterations, 200))
    best = dict.fromkeys(found, float("inf"))
    for _ in range(repeats):
        for name, subject in found.items():
            best[name] = min(best[name], await time_once(subject, iterations))
    return best


def redis_configs(url: str, prefix: str) -> dict[str, GuardConfig]:
    """The Redis stacks measured, each as `GuardConfig(redis_url=...)` builds it."""
    budget = BudgetConfig(per_tenant=Decimal(10**9), tool_costs={"lookup": Decimal("0.0001")})
    limit = RateLimit(rate=1e12, burst=1e12, per="tool")
    return {
        "breaker+limiter+budget": GuardConfig(
            circuit_breaker=CircuitBreakerConfig(),
            rate_limit=limit,
            budget=budget,
            redis_url=url,
            store_prefix=f"{prefix}:full",
        ),
        "limiter+budget": GuardConfig(
            rate_limit=limit, budget=budget, redis_url=url, store_prefix=f"{prefix}:admission"
        ),
    }


async def count_round_trips(subject: Subject, phase: list[str], calls: int) -> dict[str, float]:
    """Commands sent to Redis per call, before the function runs and after it.

    Counted where redis-py sends each command (`Redis.execute_command`): every store
    operation is one Lua script sent as one EVALSHA, one round trip. The server's own
    statistics would also count whatever else uses the same Redis meanwhile.
    """
    import redis.asyncio as redis

    sent = {"admission": 0, "after_call": 0}
    # Typed by hand: redis-py leaves execute_command unannotated.
    original: Callable[..., Awaitable[Any]] = redis.Redis.execute_command

    async def counted(self: redis.Redis, *args: Any, **options: Any) -> Any:
        sent[phase[0]] += 1
        return await original(self, *args, **options)

    redis.Redis.execute_command = counted  # type: ignore[method-assign]  # benchmark only
    try:
        for _ in range(calls):
            await subject()
    finally:
        redis.Redis.execute_command = original  # type: ignore[method-assign,assignment]
    return {key: count / calls for key, count in sent.items()}


async def measure_redis(iterations: int, repeats: int) -> dict[str, Any]:
    """The Redis stacks: µs per call, and round trips per call for admission and after it."""
    from onionskin.stores._redis import redis_url

    prefix = f"onionskin-bench:{time.time_ns()}"
    phase = ["admission"]

    async def lookup(order_id: str) -> str:
        phase[0] = "after_call"  # the guards have admitted the call
        return "shipped"

    rows: list[dict[str, Any]] = []
    for name, config in redis_configs(redis_url(), prefix).items():
        async with MiddlewarePipeline(config=config) as pipeline:

            async def subject(pipeline: MiddlewarePipeline = pipeline) -> object:
                phase[0] = "admission"
                return await pipeline.execute(lookup, kwargs={"order_id": "A1"})

            best = await measure({name: subject}, iterations, repeats)
            trips = await count_round_trips(subject, phase, 100)
        rows.append(
            {
                "stack": name,
                "us_per_call": round(best[name], 1),
                "round_trips_per_call": trips["admission"] + trips["after_call"],
                "admission_round_trips_per_call": trips["admission"],
                "after_call_round_trips_per_call": trips["after_call"],
            }
        )
    await _forget(prefix)
    # The full stack's figures stay at the top level, where earlier reports had them.
    return {**{k: v for k, v in rows[0].items() if k != "stack"}, "stacks": rows}


async def _forget(prefix: str) -> None:
    """Delete the benchmark's keys (budget lines would otherwise be kept for weeks)."""
    import redis.asyncio as redis

    from onionskin.stores._redis import redis_url

    client = redis.Redis.from_url(redis_url())
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def report(best: dict[str, float]) -> dict[str, Any]:
    floor = best["bare"]
    rows = [
        {"subject": name, "us_per_call": round(us, 2), "added_us": round(us - floor, 2)}
        for name, us in best.items()
    ]
    return {
        "bare_us": round(floor, 2),
        "full_added_us": round(best["full"] - floor, 2),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="few iterations (for the tests)")
    parser.add_argument("--redis", action="store_true", help="also measure the Redis stores")
    options = parser.parse_args()
    iterations, repeats = (200, 2) if options.quick else (3000, 7)
    with tempfile.TemporaryDirectory() as directory:
        best = asyncio.run(measure(subjects(Path(directory)), iterations, repeats))
    results = report(best)
    if options.redis:
        results["redis"] = asyncio.run(measure_redis(iterations // 3, repeats))
    if options.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'subject':<22}{'µs/call':>10}{'added µs':>10}")
    for row in results["rows"]:
        print(f"{row['subject']:<22}{row['us_per_call']:>10.2f}{row['added_us']:>10.2f}")
    if "redis" in results:
        print(f"\n{'on Redis':<24}{'µs/call':>10}{'admission':>11}{'after call':>12}{'total':>7}")
        for row in results["redis"]["stacks"]:
            print(
                f"{row['stack']:<24}{row['us_per_call']:>10.1f}"
                f"{row['admission_round_trips_per_call']:>11.2f}"
                f"{row['after_call_round_trips_per_call']:>12.2f}"
                f"{row['round_trips_per_call']:>7.2f}"
            )
        print("(round trips per call: admission before the function runs, then after it)")


if __name__ == "__main__":
    main()
