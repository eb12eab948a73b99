"""Hooks before and after model and tool calls: sync or async, observing or replacing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from onionskin import (
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolResult,
    ToolReturnPart,
)
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.hooks import HookConfig, HookMiddleware
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Call = ModelRequest | ToolCall
Result = ModelResponse | ToolResult


def calling_double(request: ModelRequest) -> ScriptItem:
    part = request.messages[-1].parts[0]
    if isinstance(part, ToolReturnPart):
        return f"result {part.content}"
    return tool_call("double", n=4)


async def double(n: int) -> int:
    """Double a number."""
    return 2 * n


def kind(value: object) -> str:
    return type(value).__name__


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_hooks_see_every_model_and_tool_call(
    orchestrator_factory: OrchestratorFactory, asynchronous: bool
) -> None:
    seen: list[tuple[str, ...]] = []

    def before(call: Call) -> None:
        seen.append(("before", kind(call)))

    def after(call: Call, result: Result) -> None:
        seen.append(("after", kind(call), kind(result)))

    async def before_async(call: Call) -> None:
        before(call)

    async def after_async(call: Call, result: Result) -> None:
        after(call, result)

    hooks = (
        HookMiddleware(before_call=before_async, after_call=after_async)
        if asynchronous
        else HookMiddleware(HookConfig(before_call=before, after_call=after))
    )
    orchestrator = orchestrator_factory(calling_double, middleware=[hooks], tools=[double])

    assert (await orchestrator.execute("go")).output == "result 8"
    assert seen == [
        ("before", "ModelRequest"),
        ("after", "ModelRequest", "ModelResponse"),
        ("before", "ToolCall"),
        ("after", "ToolCall", "ToolResult"),
        ("before", "ModelRequest"),
        ("after", "ModelRequest", "ModelResponse"),
    ]


async def test_hooks_may_replace_the_call_and_the_result(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    async def before(call: Call) -> Call | None:
        if isinstance(call, ToolCall):
            return dataclasses.replace(call, kwargs={"n": 21})
        return None  # keeps the model request

    def after(call: Call, result: Result) -> Result | None:
        if isinstance(result, ModelResponse) and result.message.text.startswith("result"):
            return dataclasses.replace(
                result, message=Message.assistant(result.message.text.upper())
            )
        return None  # keeps the tool call's result

    hooks = HookMiddleware(before_call=before, after_call=after)
    orchestrator = orchestrator_factory(calling_double, middleware=[hooks], tools=[double])
    # 42: the tool got the replaced argument; upper case: the final answer was replaced.
    assert (await orchestrator.execute("go")).output == "RESULT 42"


async def test_hooks_around_a_plain_function_in_a_pipeline() -> None:
    log: list[Any] = []

    def before(call: Call) -> Call | None:
        assert isinstance(call, ToolCall)
        log.append(("before", call.tool_name, call.kwargs))
        return dataclasses.replace(call, kwargs={"n": call.kwargs["n"] + 1})

    async def after(call: Call, result: Result) -> Result | None:
        assert isinstance(call, ToolCall)
        assert isinstance(result, ToolResult)
        log.append(("after", call.kwargs, result.value))
        return dataclasses.replace(result, value=result.value * 10)

    pipeline = MiddlewarePipeline(
        extra_middleware=[HookMiddleware(before_call=before, after_call=after)]
    )
    result = await pipeline.execute(double, kwargs={"n": 1})
    assert result.value == 40
    assert log == [("before", "double", {"n": 1}), ("after", {"n": 2}, 4)]


async def test_a_lambda_returning_an_awaitable_is_awaited() -> None:
    seen: list[str] = []

    async def record(call: Call) -> None:
        seen.append(call.tool_name if isinstance(call, ToolCall) else "model")

    hooks = HookMiddleware(before_call=lambda call: record(call))

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=1)

    await hooks.wrap_tool_call(ToolCall(tool_name="t"), next)
    assert seen == ["t"]


async def test_after_call_is_skipped_when_the_call_fails() -> None:
    after_calls: list[Any] = []
    hooks = HookMiddleware(after_call=lambda call, result: after_calls.append(result))
    error = ConnectionError("down")

    async def next(call: ToolCall) -> ToolResult:
        raise error

    with pytest.raises(ConnectionError) as raised:
        await hooks.wrap_tool_call(ToolCall(tool_name="t"), next)
    assert raised.value is error
    assert after_calls == []


async def test_a_replacement_of_the_wrong_type_is_refused_before_the_call() -> None:
    made: list[ToolCall] = []

    def before(call: Call) -> Any:
        return {"tool_name": "t"}  # a dict, not a ToolCall

    async def next(call: ToolCall) -> ToolResult:
        made.append(call)
        return ToolResult(tool_name=call.tool_name)

    with pytest.raises(TypeError, match=r"before_call returned dict; return a ToolCall"):
        await HookMiddleware(before_call=before).wrap_tool_call(ToolCall(tool_name="t"), next)
    assert made == []

    def after(call: Call, result: Result) -> Any:
        return "text"

    with pytest.raises(TypeError, match=r"after_call returned str; return a ToolResult"):
        await HookMiddleware(after_call=after).wrap_tool_call(ToolCall(tool_name="t"), next)


async def test_an_async_replacement_of_the_wrong_type_is_refused_too() -> None:
    made: list[ToolCall] = []

    async def before(call: Call) -> Any:
        return 3

    async def next(call: ToolCall) -> ToolResult:
        made.append(call)
        return ToolResult(tool_name=call.tool_name)

    with pytest.raises(TypeError, match=r"before_call returned int; return a ToolCall"):
        await HookMiddleware(before_call=before).wrap_tool_call(ToolCall(tool_name="t"), next)
    assert made == []

    async def after(call: Call, result: Result) -> Any:
        return ModelResponse(message=Message.assistant("a model's answer"))

    with pytest.raises(TypeError, match=r"after_call returned ModelResponse; return a ToolResult"):
        await HookMiddleware(after_call=after).wrap_tool_call(ToolCall(tool_name="t"), next)


async def test_a_lambda_may_replace_through_an_awaitable() -> None:
    async def renamed(call: Call) -> Call:
        assert isinstance(call, ToolCall)
        return dataclasses.replace(call, tool_name="renamed")

    async def tagged(result: Result) -> Result:
        assert isinstance(result, ToolResult)
        return dataclasses.replace(result, value=f"{result.value}!")

    hooks = HookMiddleware(
        before_call=lambda call: renamed(call), after_call=lambda call, result: tagged(result)
    )

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=call.tool_name)

    result = await hooks.wrap_tool_call(ToolCall(tool_name="t"), next)
    assert (result.tool_name, result.value) == ("renamed", "renamed!")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"before_call": "print"}, "before_call"),
        ({"after_call": 3}, "after_call"),
        ({}, "before_call or after_call"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        HookConfig(**options)
    with pytest.raises(ConfigError, match=field):
        HookMiddleware(**options)


def test_config_and_keywords_are_not_mixed() -> None:
    config = HookConfig(before_call=print)
    with pytest.raises(ConfigError, match="not both"):
        HookMiddleware(config, after_call=print)
    with pytest.raises(ConfigError, match="HookConfig"):
        HookMiddleware(print)  # type: ignore[arg-type]
