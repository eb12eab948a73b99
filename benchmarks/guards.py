"""What the guards cost per call: the full built-in stack against the bare call, same run.

Subjects, each calling the same async function `lookup(order_id)` once per call:

* `bare`: `await lookup(order_id="A1")`, the floor;
* `pipeline`: `MiddlewarePipeline()` with no guards (the chain, the ToolCall, the result);
* `guard:<name>`: one built-in alone, to see where the time goes;
* `full`: every built-in at once on memory stores: circuit breaker, rate limiter, budget,
  validation, hallucination, retry, timeout, trace (a JSONL file in a temporary
  directory, OpenTelemetry through the API's no-op tracer), hooks, PII redaction and a
  call limit. Every guard admits every call, so the figure is the cost of checking.
* `redis`: breaker, limiter and budget on Redis (`--redis`; `ONIONSKIN_REDIS_URL`),
  with the Redis round trips per call counted from the server's own command statistics.

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


def _budget(store: Any = None) -> BudgetMiddleware:
    config = BudgetConfig(per_tenant=Decimal(10**9), tool_costs={"lookup": Decimal("0.0001")})
    return BudgetMiddleware(config, store=store)


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


async def measure_redis(iterations: int, repeats: int) -> dict[str, Any]:
    """Breaker + limiter + budget on Redis: µs per call and round trips per call.

    Every store operation is one Lua script sent as one command, so round trips are counted
    as calls of `RedisScripts.run` (the server's own statistics would also count whatever
    else uses the same Redis meanwhile).
    """
    from onionskin.stores._redis import RedisScripts, redis_url
    from onionskin.stores.redis_budget import RedisBudgetStore

    url = redis_url()
    prefix = f"onionskin-bench:{time.time_ns()}"
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimit(rate=1e12, burst=1e12, per="tool"),
        redis_url=url,
        store_prefix=prefix,
    )
    scripts = RedisScripts.from_url(url, prefix=prefix)
    kwargs = {"order_id": "A1"}
    sent = [0]
    run = RedisScripts.run

    async def counted(self: RedisScripts, script: Any, keys: list[str], args: list[Any]) -> Any:
        sent[0] += 1
        return await run(self, script, keys, args)

    async with MiddlewarePipeline(
        config=config, extra_middleware=[_budget(RedisBudgetStore(scripts))]
    ) as pipeline:
        subject = _execute(pipeline, kwargs)
        best = await measure({"redis": subject}, iterations, repeats)
        RedisScripts.run = counted  # type: ignore[method-assign]  # counting, benchmark only
        try:
            for _ in range(100):
                await subject()
        finally:
            RedisScripts.run = run  # type: ignore[method-assign]
    await scripts.aclose()
    return {"us_per_call": best["redis"], "round_trips_per_call": sent[0] / 100}


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
        redis = results["redis"]
        print(
            f"redis (breaker+limiter+budget): {redis['us_per_call']:.1f} µs/call, "
            f"{redis['round_trips_per_call']:.2f} round trips/call"
        )


if __name__ == "__main__":
    main()
