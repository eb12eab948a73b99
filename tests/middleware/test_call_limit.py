"""Call limits: per run in the run's guard state, per session outside a run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from onionskin import (
    CallLimitExceededError,
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    RunContext,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.call_limit import CallLimitConfig, CallLimitMiddleware
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory


def calling_ping_times(times: int) -> Any:
    """A script that calls `ping` `times` times, then answers."""

    def script(request: ModelRequest) -> ScriptItem:
        done = sum(1 for message in request.messages if message.role == "tool")
        return tool_call("ping") if done < times else f"pinged {done}"

    return script


class Pinger:
    def __init__(self) -> None:
        self.calls = 0

    async def ping(self) -> str:
        """Ping."""
        self.calls += 1
        return "pong"


class Capture:
    """Keeps a copy of the run's guard state when the run completes."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def after_pipeline(self, context: RunContext, result: Any) -> None:
        self.state = dict(context.guard_state)


async def test_tool_calls_are_limited_per_run(orchestrator_factory: OrchestratorFactory) -> None:
    pinger = Pinger()
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=2))
    capture = Capture()
    within = orchestrator_factory(
        calling_ping_times(2), middleware=[capture, limit], tools=[pinger.ping]
    )

    for _ in range(2):  # each run has its own count
        assert (await within.execute("go")).output == "pinged 2"
    assert capture.state["call_limit"] == {"model": 0, "tool": 2}
    assert pinger.calls == 4

    beyond = orchestrator_factory(calling_ping_times(3), middleware=[limit], tools=[pinger.ping])
    with pytest.raises(CallLimitExceededError) as raised:
        await beyond.execute("go")
    assert (raised.value.kind, raised.value.limit) == ("tool", 2)
    assert pinger.calls == 6  # the third call was refused before it ran


async def test_model_calls_are_limited_per_run(orchestrator_factory: OrchestratorFactory) -> None:
    pinger = Pinger()
    limit = CallLimitMiddleware(CallLimitConfig(max_model_calls=3, max_tool_calls=10))
    capture = Capture()
    orchestrator = orchestrator_factory(
        calling_ping_times(2), middleware=[capture, limit], tools=[pinger.ping]
    )
    assert (await orchestrator.execute("go")).output == "pinged 2"
    assert capture.state["call_limit"] == {"model": 3, "tool": 2}

    looping = orchestrator_factory(calling_ping_times(5), middleware=[limit], tools=[pinger.ping])
    with pytest.raises(CallLimitExceededError, match="limit of 3 model calls") as raised:
        await looping.execute("go")
    assert raised.value.kind == "model"


async def test_two_limiters_with_distinct_names_count_apart(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    outer = CallLimitMiddleware(CallLimitConfig(max_tool_calls=5, name="outer"))
    inner = CallLimitMiddleware(CallLimitConfig(max_tool_calls=5, name="inner"))
    capture = Capture()
    orchestrator = orchestrator_factory(
        calling_ping_times(2), middleware=[capture, outer, inner], tools=[Pinger().ping]
    )
    await orchestrator.execute("go")
    assert capture.state == {"outer": {"model": 0, "tool": 2}, "inner": {"model": 0, "tool": 2}}


async def answer(call: ToolCall) -> ToolResult:
    return ToolResult(tool_name=call.tool_name, value="ok")


async def test_outside_a_run_each_session_has_its_own_count() -> None:
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=2))
    for _ in range(2):
        await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="a"), answer)
    with pytest.raises(CallLimitExceededError):
        await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="a"), answer)

    await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="b"), answer)
    limit.reset("a")
    await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="a"), answer)


async def test_outside_a_run_calls_without_a_session_share_the_instances_count() -> None:
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=1, max_model_calls=1))
    other = CallLimitMiddleware(CallLimitConfig(max_tool_calls=1))
    await limit.wrap_tool_call(ToolCall(tool_name="t"), answer)
    with pytest.raises(CallLimitExceededError):
        await limit.wrap_tool_call(ToolCall(tool_name="other"), answer)
    await other.wrap_tool_call(ToolCall(tool_name="t"), answer)  # another instance

    async def respond(request: ModelRequest) -> ModelResponse:
        return ModelResponse(message=Message.assistant("hi"))

    request = ModelRequest(model=ScriptedModel(["x"]), messages=[])
    await limit.wrap_model_call(request, respond)
    with pytest.raises(CallLimitExceededError, match="model calls"):
        await limit.wrap_model_call(request, respond)
    limit.reset()
    await limit.wrap_tool_call(ToolCall(tool_name="t"), answer)


async def test_a_kind_without_a_limit_is_neither_limited_nor_counted() -> None:
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=1))

    async def respond(request: ModelRequest) -> ModelResponse:
        return ModelResponse(message=Message.assistant("hi"))

    request = ModelRequest(model=ScriptedModel(["x"]), messages=[])
    for _ in range(3):
        await limit.wrap_model_call(request, respond)
    await limit.wrap_tool_call(ToolCall(tool_name="t"), answer)  # the tool count is untouched
    with pytest.raises(CallLimitExceededError, match="tool calls"):
        await limit.wrap_tool_call(ToolCall(tool_name="t"), answer)


async def test_concurrent_runs_count_apart(orchestrator_factory: OrchestratorFactory) -> None:
    pinger = Pinger()
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=2))
    orchestrator = orchestrator_factory(
        calling_ping_times(2), middleware=[limit], tools=[pinger.ping]
    )
    results = await asyncio.gather(*(orchestrator.execute("go") for _ in range(3)))
    assert [result.output for result in results] == ["pinged 2"] * 3
    assert pinger.calls == 6


async def test_failed_calls_count_too() -> None:
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=1))

    async def failing(call: ToolCall) -> ToolResult:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="s"), failing)
    with pytest.raises(CallLimitExceededError):
        await limit.wrap_tool_call(ToolCall(tool_name="t", session_id="s"), answer)


async def test_only_the_most_recent_sessions_are_remembered() -> None:
    limit = CallLimitMiddleware(CallLimitConfig(max_tool_calls=1, max_sessions=2))

    async def call(session: str) -> None:
        await limit.wrap_tool_call(ToolCall(tool_name="t", session_id=session), answer)

    await call("a")
    await call("b")
    with pytest.raises(CallLimitExceededError):
        await call("a")  # still remembered, and now the most recently used
    await call("c")  # a third session: "b", the least recently used, is forgotten
    await call("b")  # counts afresh (and "a" is forgotten in turn)
    with pytest.raises(CallLimitExceededError):
        await call("c")


async def test_a_limit_of_zero_refuses_every_call_of_its_kind() -> None:
    pipeline = MiddlewarePipeline(
        extra_middleware=[CallLimitMiddleware(CallLimitConfig(max_tool_calls=0))]
    )
    ran: list[int] = []

    def work() -> int:
        ran.append(1)
        return 1

    with pytest.raises(CallLimitExceededError, match="limit of 0 tool calls"):
        await pipeline.execute(work, session_id="s")
    assert ran == []


async def test_a_guarded_function_is_limited_per_session() -> None:
    pipeline = MiddlewarePipeline(
        extra_middleware=[CallLimitMiddleware(CallLimitConfig(max_tool_calls=1))]
    )

    def work(n: int) -> int:
        return n

    assert (await pipeline.execute(work, args=(1,), session_id="s1")).value == 1
    assert (await pipeline.execute(work, args=(2,), session_id="s2")).value == 2
    with pytest.raises(CallLimitExceededError):
        await pipeline.execute(work, args=(3,), session_id="s1")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "max_model_calls or max_tool_calls"),
        ({"max_tool_calls": -1}, "max_tool_calls"),
        ({"max_tool_calls": True}, "max_tool_calls"),
        ({"max_model_calls": 2.0}, "max_model_calls"),
        ({"max_tool_calls": 1, "name": ""}, "name"),
        ({"max_tool_calls": 1, "max_sessions": 0}, "max_sessions"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        CallLimitConfig(**options)


def test_a_config_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="CallLimitConfig"):
        CallLimitMiddleware({"max_tool_calls": 1})  # type: ignore[arg-type]
