"""Timeouts really cancel the callee; a sync function's thread is abandoned, not stopped.

These tests use tiny real waits: cancellation runs on the event loop's own timer.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from onionskin import (
    ConfigError,
    GuardTimeoutError,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.timeout import TimeoutConfig, TimeoutMiddleware
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory

TICK = 0.02
"""A timeout short enough to keep the file fast, long enough to be reached on purpose."""

CALL = ToolCall(tool_name="slow", session_id="s1")


async def test_the_callee_is_cancelled_and_the_error_chains_the_timeout() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def next(call: ToolCall) -> ToolResult:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends it
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    timeout = TimeoutMiddleware(TimeoutConfig(seconds=TICK))
    with pytest.raises(GuardTimeoutError) as raised:
        await timeout.wrap_tool_call(CALL, next)

    assert started.is_set()
    assert cancelled.is_set()
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert (raised.value.target, raised.value.timeout) == ("tool 'slow'", TICK)
    assert "tool 'slow' took longer than 0.02 s" in str(raised.value)


async def test_a_fast_call_returns_its_result() -> None:
    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=42)

    timeout = TimeoutMiddleware(TimeoutConfig(seconds=5))
    assert (await timeout.wrap_tool_call(CALL, next)).value == 42


async def test_the_callees_own_timeout_error_passes_unchanged() -> None:
    own = TimeoutError("the backend said so")

    async def next(call: ToolCall) -> ToolResult:
        raise own

    with pytest.raises(TimeoutError) as raised:
        await TimeoutMiddleware(TimeoutConfig(seconds=5)).wrap_tool_call(CALL, next)
    assert raised.value is own
    assert not isinstance(raised.value, GuardTimeoutError)


async def test_a_sync_function_in_a_thread_runs_on_and_its_result_is_discarded() -> None:
    release, finished = threading.Event(), threading.Event()
    outcome: list[str] = []

    def blocking_lookup(key: str) -> str:
        release.wait(5)  # stands for blocking I/O; the test releases it
        outcome.append(f"looked up {key}")
        finished.set()
        return key

    pipeline = MiddlewarePipeline(
        extra_middleware=[TimeoutMiddleware(TimeoutConfig(tool_seconds=TICK))]
    )
    with pytest.raises(GuardTimeoutError) as raised:
        await pipeline.execute(blocking_lookup, kwargs={"key": "k"})
    assert raised.value.target == "tool 'blocking_lookup'"
    assert outcome == []  # the caller stopped waiting; the thread is still blocked

    release.set()
    assert await asyncio.to_thread(finished.wait, 5)
    assert outcome == ["looked up k"]  # it ran to completion in the background


async def test_tool_calls_time_out_in_a_run(orchestrator_factory: OrchestratorFactory) -> None:
    cancelled: list[str] = []

    async def crawl(url: str) -> str:
        """Crawl a site."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(url)
            raise
        return "never"

    def script(request: ModelRequest) -> ScriptItem:
        return tool_call("crawl", url="https://example.test")

    timeout = TimeoutMiddleware(TimeoutConfig(seconds=5, tool_seconds=TICK))
    orchestrator = orchestrator_factory(script, middleware=[timeout], tools=[crawl])
    with pytest.raises(GuardTimeoutError) as raised:
        await orchestrator.execute("go")
    assert (raised.value.target, raised.value.timeout) == ("tool 'crawl'", TICK)
    assert cancelled == ["https://example.test"]


async def test_model_calls_time_out_in_a_run(orchestrator_factory: OrchestratorFactory) -> None:
    async def thinking(request: ModelRequest) -> ScriptItem:
        await asyncio.Event().wait()
        return "never"

    timeout = TimeoutMiddleware(TimeoutConfig(seconds=5, model_seconds=TICK))
    orchestrator = orchestrator_factory(thinking, middleware=[timeout])
    with pytest.raises(GuardTimeoutError) as raised:
        await orchestrator.execute("go")
    assert (raised.value.target, raised.value.timeout) == ("model 'scripted'", TICK)


async def test_each_kind_uses_its_own_timeout() -> None:
    timeout = TimeoutMiddleware(TimeoutConfig(seconds=TICK, model_seconds=5))

    async def slow_model(request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(TICK * 3)
        return ModelResponse(message=Message.assistant("done"))

    async def slow_tool(call: ToolCall) -> ToolResult:
        await asyncio.sleep(TICK * 3)
        return ToolResult(tool_name=call.tool_name, value="done")

    request = ModelRequest(model=ScriptedModel(["unused"]), messages=[])
    assert (await timeout.wrap_model_call(request, slow_model)).message.text == "done"
    with pytest.raises(GuardTimeoutError) as raised:
        await timeout.wrap_tool_call(CALL, slow_tool)
    assert raised.value.timeout == TICK


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": "5"}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"model_seconds": 0}, "model_seconds"),
        ({"tool_seconds": True}, "tool_seconds"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        TimeoutConfig(**options)


def test_a_config_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="TimeoutConfig"):
        TimeoutMiddleware(5)  # type: ignore[arg-type]
