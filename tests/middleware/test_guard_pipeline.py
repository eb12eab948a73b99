"""`MiddlewarePipeline`, `GuardMiddleware` and `@guard` around plain functions (seed 001)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from onionskin import (
    Agent,
    CircuitOpenError,
    ConfigError,
    OnionskinError,
    Orchestrator,
    ToolCall,
    ToolResult,
    current_request_metadata,
    request_metadata_scope,
)
from onionskin.middleware import CircuitBreakerConfig
from onionskin.middleware.guard import AsyncGuardedTool, GuardedTool, guard
from onionskin.middleware.guard_config import GuardConfig
from onionskin.middleware.guard_pipeline import GuardMiddleware, MiddlewarePipeline
from onionskin.testing import FakeClock, ScriptedModel, tool_call

Next = Callable[[ToolCall], Awaitable[ToolResult]]


class AuditMiddleware(GuardMiddleware):
    """Seed 001's example: record every attempt, success and failure."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    async def __call__(self, call: ToolCall, next: Next) -> ToolResult:
        self.log.append(("start", call.tool_name, dict(call.kwargs), call.session_id))
        try:
            result = await next(call)
        except Exception as exc:
            self.log.append(("failure", str(exc)))
            raise
        self.log.append(("success", result.execution_time_ms))
        return result


async def search(query: str, limit: int = 3) -> list[str]:
    """Search the catalogue."""
    return [f"{query}-{i}" for i in range(limit)]


async def test_execute_returns_the_tool_result_with_timing() -> None:
    pipeline = MiddlewarePipeline(config=GuardConfig())
    result = await pipeline.execute(search, args=(), kwargs={"query": "test"})
    assert result.value == ["test-0", "test-1", "test-2"]
    assert result.status == "success"
    assert result.tool_name == "search"
    assert result.execution_time_ms >= 0
    assert result.call_id


async def test_sync_functions_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    def where(tag: str) -> tuple[str, int]:
        return tag, threading.get_ident()

    result = await MiddlewarePipeline().execute(where, args=("x",))
    assert result.value[0] == "x"
    assert result.value[1] != loop_thread


async def test_custom_middleware_sees_the_seed_fields_and_failures_propagate() -> None:
    log: list[tuple[Any, ...]] = []
    pipeline = MiddlewarePipeline(config=GuardConfig(), extra_middleware=[AuditMiddleware(log)])
    await pipeline.execute(search, kwargs={"query": "a", "limit": 1}, session_id="s-1")
    assert log[0] == ("start", "search", {"query": "a", "limit": 1}, "s-1")
    assert log[1][0] == "success"

    failure = ValueError("bad query")

    async def broken(query: str) -> str:
        raise failure

    with pytest.raises(ValueError, match="bad query") as raised:
        await pipeline.execute(broken, kwargs={"query": "b"})
    assert raised.value is failure
    assert log[-1] == ("failure", "bad query")


async def test_builtins_come_first_then_extras_in_order() -> None:
    order: list[str] = []

    def recording(name: str) -> Callable[[ToolCall, Next], Awaitable[ToolResult]]:
        async def mw(call: ToolCall, next: Next) -> ToolResult:
            order.append(f"{name}>")
            result = await next(call)
            order.append(f"<{name}")
            return result

        return mw

    config = GuardConfig(circuit_breaker=CircuitBreakerConfig())
    pipeline = MiddlewarePipeline(
        config=config, extra_middleware=[recording("audit"), recording("telemetry")]
    )
    assert type(pipeline.middleware[0]).__name__ == "CircuitBreakerMiddleware"
    await pipeline.execute(search, kwargs={"query": "q"})
    assert order == ["audit>", "telemetry>", "<telemetry", "<audit"]


async def test_a_middleware_may_answer_without_calling_the_function() -> None:
    calls: list[str] = []

    async def cached(call: ToolCall, next: Next) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="from cache")

    async def expensive(query: str) -> str:
        calls.append(query)
        return "fresh"

    result = await MiddlewarePipeline(extra_middleware=[cached]).execute(
        expensive, kwargs={"query": "q"}
    )
    assert result.value == "from cache"
    assert calls == []


async def test_the_circuit_breaker_from_config_guards_a_plain_function() -> None:
    clock = FakeClock()
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10),
        clock=clock,
    )
    pipeline = MiddlewarePipeline(config=config)

    async def down() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await pipeline.execute(down)
    with pytest.raises(CircuitOpenError) as refused:
        await pipeline.execute(down)
    assert refused.value.retry_after == pytest.approx(10)


def test_per_environment_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    audit = AuditMiddleware([])

    def build_pipeline(config: GuardConfig) -> MiddlewarePipeline:
        extra: list[object] = []
        if __import__("os").getenv("ENV") == "production":
            extra.append(audit)
        return MiddlewarePipeline(config=config, extra_middleware=extra)

    monkeypatch.setenv("ENV", "production")
    assert audit in build_pipeline(GuardConfig()).middleware
    monkeypatch.setenv("ENV", "development")
    assert audit not in build_pipeline(GuardConfig()).middleware


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ConfigError, match="GuardConfig"):
        MiddlewarePipeline(config={"max_retries": 2})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="circuit_breaker"):
        GuardConfig(circuit_breaker={"failure_threshold": 2})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a middleware"):
        MiddlewarePipeline(extra_middleware=[object()])
    with pytest.raises(TypeError):
        GuardMiddleware()  # type: ignore[abstract]


async def test_guard_keeps_an_async_function_async_and_its_signature() -> None:
    guarded = guard(search)
    assert isinstance(guarded, AsyncGuardedTool)
    assert inspect.signature(guarded) == inspect.signature(search)
    assert guarded.__name__ == "search"
    assert guarded.__doc__ == "Search the catalogue."
    assert await guarded("q", limit=1) == ["q-0"]


def test_guard_keeps_a_sync_function_callable_from_sync_code() -> None:
    log: list[tuple[Any, ...]] = []

    @guard(extra_middleware=[AuditMiddleware(log)])
    def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, GuardedTool)
    assert add(2, 3) == 5
    assert log[0] == ("start", "add", {}, None)
    with pytest.raises(TypeError):
        add(1)  # type: ignore[call-arg]


async def test_a_guarded_sync_function_works_inside_a_running_loop_too() -> None:
    @guard
    def double(x: int) -> int:
        return 2 * x

    assert double(21) == 42
    assert await double.acall(4) == 8


def test_the_callers_context_reaches_the_guarded_sync_function() -> None:
    seen: list[Any] = []

    async def mw(call: ToolCall, next: Next) -> ToolResult:
        seen.append(current_request_metadata().get("tenant"))
        return await next(call)

    @guard(extra_middleware=[mw])
    def who() -> Any:
        return current_request_metadata().get("tenant")

    with request_metadata_scope({"tenant": "acme"}):
        assert who() == "acme"
    assert seen == ["acme"]


def test_a_sync_hook_on_the_guard_loop_cannot_deadlock_it() -> None:
    @guard
    def inner() -> int:
        return 1

    def calls_inner(call: ToolCall, next: Next) -> Awaitable[ToolResult]:
        inner()
        return next(call)

    @guard(extra_middleware=[calls_inner])
    def outer() -> int:
        return 2

    with pytest.raises(OnionskinError, match="guard loop itself"):
        outer()


def test_guard_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="not both"):
        guard(config=GuardConfig(), clock=FakeClock())
    with pytest.raises(ConfigError, match="GuardConfig"):
        guard(no_such_option=1)
    with pytest.raises(ConfigError, match="needs a function"):
        guard()(42)  # type: ignore[call-overload]


async def test_a_guarded_function_serves_as_an_agent_tool() -> None:
    calls: list[str] = []

    @guard(extra_middleware=[AuditMiddleware([])])
    async def lookup(order_id: str) -> str:
        """Look up an order."""
        calls.append(order_id)
        return "shipped"

    def script(request: Any) -> Any:
        if request.messages[-1].role == "tool":
            return "it shipped"
        return tool_call("lookup", order_id="A1")

    agent = Agent("support", model=ScriptedModel(script), tools=[lookup])
    result = await Orchestrator(agent).execute("where is A1?")
    assert result.output == "it shipped"
    assert calls == ["A1"]


async def test_concurrent_calls_do_not_share_state() -> None:
    async def echo(x: int) -> int:
        await asyncio.sleep(0)
        return x

    pipeline = MiddlewarePipeline()
    results = await asyncio.gather(*(pipeline.execute(echo, args=(i,)) for i in range(50)))
    assert [r.value for r in results] == list(range(50))
