"""Timeouts really cancel the callee; a sync function's thread is abandoned, not stopped.

These tests use tiny real waits: cancellation runs on the event loop's own timer.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Generator
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
    ToolReturnPart,
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


@pytest.mark.parametrize("waits_first", [False, True], ids=["at-once", "after-a-wait"])
async def test_the_callees_own_timeout_error_passes_unchanged(waits_first: bool) -> None:
    own = TimeoutError("the backend said so")

    async def next(call: ToolCall) -> ToolResult:
        if waits_first:
            await asyncio.sleep(0)
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


async def test_a_run_whose_calls_never_wait_completes_untouched(
    orchestrator_factory: OrchestratorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed = count_timers(monkeypatch)

    async def double(n: int) -> int:
        """Double a number."""
        return 2 * n

    def script(request: ModelRequest) -> ScriptItem:
        part = request.messages[-1].parts[0]
        if isinstance(part, ToolReturnPart):
            return f"result {part.content}"
        return tool_call("double", n=21)

    timeout = TimeoutMiddleware(TimeoutConfig(seconds=5))
    orchestrator = orchestrator_factory(script, middleware=[timeout], tools=[double])
    assert (await orchestrator.execute("go")).output == "result 42"
    assert armed == []  # two model calls and a tool call, none of which waited


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


def count_timers(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Record the deadline of every `asyncio.timeout_at` the middleware arms."""
    armed: list[float | None] = []
    real = asyncio.timeout_at

    def spy(when: float | None) -> asyncio.Timeout:
        armed.append(when)
        return real(when)

    monkeypatch.setattr(asyncio, "timeout_at", spy)
    return armed


async def test_a_call_that_never_suspends_arms_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """No timer can fire before the callee first waits, so none is armed for such a call."""
    armed = count_timers(monkeypatch)
    timeout = TimeoutMiddleware(TimeoutConfig(seconds=5))

    async def instant(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="now")

    async def waits(call: ToolCall) -> ToolResult:
        await asyncio.sleep(0)
        return ToolResult(tool_name=call.tool_name, value="later")

    assert (await timeout.wrap_tool_call(CALL, instant)).value == "now"
    assert armed == []
    loop = asyncio.get_running_loop()
    before = loop.time()
    assert (await timeout.wrap_tool_call(CALL, waits)).value == "later"
    assert len(armed) == 1
    assert armed[0] is not None
    assert before + 5 <= armed[0] <= loop.time() + 5


async def test_the_deadline_counts_from_the_start_of_the_call() -> None:
    """A first step that blocks past the deadline is cancelled at its first wait."""
    cancelled = asyncio.Event()

    async def next(call: ToolCall) -> ToolResult:
        loop = asyncio.get_running_loop()
        until = loop.time() + TICK * 2
        while loop.time() < until:  # blocks the loop: the deadline passes before the first await
            pass
        try:
            await asyncio.sleep(TICK / 2)  # would finish well within a timeout armed now
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ToolResult(tool_name=call.tool_name, value="late")

    with pytest.raises(GuardTimeoutError):
        await TimeoutMiddleware(TimeoutConfig(seconds=TICK)).wrap_tool_call(CALL, next)
    assert cancelled.is_set()


async def test_a_callee_that_waits_many_times_gets_every_value_back() -> None:
    loop = asyncio.get_running_loop()

    async def next(call: ToolCall) -> ToolResult:
        total = 0
        for n in range(1, 4):
            future: asyncio.Future[int] = loop.create_future()
            loop.call_soon(future.set_result, n)
            total += await future
            await asyncio.sleep(0)
        return ToolResult(tool_name=call.tool_name, value=total)

    assert (await TimeoutMiddleware().wrap_tool_call(CALL, next)).value == 6


async def test_an_error_after_a_wait_passes_unchanged() -> None:
    own = ConnectionError("reset")

    async def next(call: ToolCall) -> ToolResult:
        await asyncio.sleep(0)
        raise own

    with pytest.raises(ConnectionError) as raised:
        await TimeoutMiddleware().wrap_tool_call(CALL, next)
    assert raised.value is own


async def test_an_outside_cancellation_reaches_the_callee_and_stays_a_cancellation() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def next(call: ToolCall) -> ToolResult:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    task = asyncio.create_task(TimeoutMiddleware().wrap_tool_call(CALL, next))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    assert task.cancelled()


async def test_an_error_thrown_into_the_guard_reaches_the_callee_at_its_wait() -> None:
    """Driven by hand: `throw` and `close` go on to the callee, as `await` would send them."""
    seen: list[str] = []

    async def next(call: ToolCall) -> ToolResult:
        try:
            await asyncio.sleep(0)
        except LookupError as error:
            seen.append(repr(error))
        except ValueError as error:
            seen.append(f"raising {error!r}")
            raise
        try:
            await asyncio.sleep(0)
        finally:
            seen.append("closed")
        raise AssertionError("unreachable")

    guard = TimeoutMiddleware().wrap_tool_call(CALL, next)
    guard.send(None)  # runs to the callee's first wait
    guard.throw(KeyError("k"))  # caught by the callee, which then waits again
    guard.close()
    assert seen == ["KeyError('k')", "closed"]

    guard = TimeoutMiddleware().wrap_tool_call(CALL, next)
    guard.send(None)
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: it was made from the class
        guard.throw(ValueError)  # a class, as the throw protocol allows: raised as an instance
    assert seen[2:] == ["raising ValueError()"]

    guard = TimeoutMiddleware().wrap_tool_call(CALL, next)
    guard.send(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the 3-argument form, still valid
        guard.throw(KeyError, KeyError("old form"), None)
    guard.close()
    assert seen[3:] == ["KeyError('old form')", "closed"]


class Later:
    """An awaitable that is not a coroutine (as some `next` layers return): waits `steps`."""

    def __init__(self, steps: int, value: str) -> None:
        self.steps, self.value = steps, value

    def __await__(self) -> Generator[None, None, ToolResult]:
        for _ in range(self.steps):
            yield None  # a bare yield: the task runs the loop once, then resumes us
        return ToolResult(tool_name="slow", value=self.value)


async def test_an_awaitable_that_is_not_a_coroutine_is_timed_too() -> None:
    timeout = TimeoutMiddleware(TimeoutConfig(seconds=TICK))
    assert (await timeout.wrap_tool_call(CALL, lambda call: Later(3, "done"))).value == "done"
    with pytest.raises(GuardTimeoutError):
        await timeout.wrap_tool_call(CALL, lambda call: Later(10**9, "never"))


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
