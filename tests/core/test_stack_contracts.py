"""Stack contracts: mandatory audit layers see every run's end; fail-open layers are skipped."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from onionskin import (
    Agent,
    BaseMiddleware,
    Message,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    PipelineCall,
    PipelineResult,
    RateLimitExceededError,
    RunContext,
    StopProcessing,
    ToolCall,
    ToolResult,
)
from onionskin.core.placement import StackContract, place
from onionskin.testing import ScriptedModel, tool_call


class Audit(BaseMiddleware):
    """Records how each run ended; mandatory."""

    stack_contract = StackContract(mandatory=True)

    def __init__(self) -> None:
        self.ends: list[tuple[str, Any]] = []

    def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        self.ends.append(("completed", result.output))

    def on_error(self, context: RunContext, error: BaseException) -> None:
        self.ends.append(("failed", type(error).__name__))


class PlainAudit(Audit):
    stack_contract = StackContract()


class Cache(BaseMiddleware):
    """Answers every run itself: an outer short-circuit."""

    async def wrap_pipeline(
        self, call: PipelineCall, next: Callable[[PipelineCall], Awaitable[PipelineResult]]
    ) -> PipelineResult:
        return PipelineResult(output="cached")


class Gate(BaseMiddleware):
    """Stops every run before the model: an inner StopProcessing."""

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        raise StopProcessing("gated")


class Broken(BaseMiddleware):
    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        raise RuntimeError("inner layer broke")


def orchestrator(*middleware: object, script: Any = None) -> Orchestrator:
    model = ScriptedModel(script or (lambda request: "answer"))
    return Orchestrator(Agent("assistant", model=model), middleware=middleware)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (Gate(), ("completed", "gated")),
        (Broken(), ("failed", "RuntimeError")),
        (None, ("completed", "answer")),
    ],
)
async def test_a_mandatory_audit_sees_the_end_of_every_run(
    inner: object | None, expected: tuple[str, str]
) -> None:
    audit = Audit()
    runner = orchestrator(audit, *([inner] if inner else []))
    with contextlib.suppress(RuntimeError):  # the failed run raises; the audit saw it
        await runner.execute("hi")
    assert audit.ends == [expected]


async def test_without_mandatory_an_inner_stop_skips_the_after_hook() -> None:
    audit = PlainAudit()
    result = await orchestrator(audit, Gate()).execute("hi")
    assert (result.output, result.stopped) == ("gated", True)
    assert audit.ends == []


async def test_a_mandatory_audit_inside_an_outer_short_circuit_still_sees_the_end() -> None:
    audit, plain = Audit(), PlainAudit()
    result = await orchestrator(Cache(), audit, plain).execute("hi")
    assert result.output == "cached"
    assert audit.ends == [("completed", "cached")]
    assert plain.ends == []


async def test_a_mandatory_after_hook_may_replace_the_result_and_stop_stays_stopped() -> None:
    class Redact(BaseMiddleware):
        stack_contract = StackContract(mandatory=True)

        async def after_pipeline(self, context: RunContext, result: PipelineResult) -> Any:
            return PipelineResult(output=str(result.output).upper())

    result = await orchestrator(Redact(), Gate()).execute("hi")
    assert (result.output, result.stopped) == ("GATED", True)


async def test_a_failing_mandatory_after_hook_fails_the_run_and_runs_on_error() -> None:
    errors: list[str] = []

    class Strict(BaseMiddleware):
        stack_contract = StackContract(mandatory=True)

        def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
            raise ValueError("audit store down")

        def on_error(self, context: RunContext, error: BaseException) -> None:
            errors.append(str(error))

    with pytest.raises(ValueError, match="audit store down"):
        await orchestrator(Strict(), Gate()).execute("hi")
    assert errors == ["audit store down"]


class Flaky(BaseMiddleware):
    """A layer whose own code breaks, before or after its call."""

    def __init__(self, where: str) -> None:
        self.where = where

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        if self.where == "before":
            raise KeyError("cache miss handling broke")
        response = await next(request)
        if self.where == "after":
            raise KeyError("cache write broke")
        return response

    def before_tool(self, context: RunContext, call: ToolCall) -> None:
        if self.where == "hook":
            raise KeyError("tool hook broke")

    def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> None:
        if self.where == "hook":
            raise KeyError("tool hook broke")


def lookup(q: str) -> str:
    """Look up."""
    return "found"


def tool_then_answer(request: ModelRequest) -> Any:
    return "answer" if request.messages[-1].role == "tool" else tool_call("lookup", q="x")


@pytest.mark.parametrize("where", ["before", "after", "hook"])
async def test_a_fail_open_layer_that_breaks_is_skipped_and_logged(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ModelRequest] = []

    def script(request: ModelRequest) -> Any:
        calls.append(request)
        return tool_then_answer(request)

    agent = Agent("assistant", model=ScriptedModel(script), tools=[lookup])
    runner = Orchestrator(agent, middleware=[place(Flaky(where), fail_open=True)])
    with caplog.at_level(logging.WARNING, logger="onionskin.middleware"):
        result = await runner.execute("hi")
    assert result.output == "answer"
    assert len(calls) == 2  # every model call was made once: none skipped, none repeated
    assert "Flaky (fail-open) raised" in caplog.text
    assert "broke" in caplog.text


@pytest.mark.parametrize("where", ["before", "after", "hook"])
async def test_a_fail_closed_layer_that_breaks_fails_the_run(where: str) -> None:
    agent = Agent("assistant", model=ScriptedModel(tool_then_answer), tools=[lookup])
    with pytest.raises(KeyError, match="broke"):
        await Orchestrator(agent, middleware=[Flaky(where)]).execute("hi")


async def test_fail_open_never_hides_a_refusal_or_an_inner_error() -> None:
    class Refuses(BaseMiddleware):
        def before_model(self, context: RunContext, request: ModelRequest) -> None:
            raise RateLimitExceededError("tenant:acme:all-calls", 2.0)

    with pytest.raises(RateLimitExceededError):
        await orchestrator(place(Refuses(), fail_open=True)).execute("hi")

    class Passes(BaseMiddleware):
        async def wrap_model_call(
            self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
        ) -> ModelResponse:
            return await next(request)

    # The inner layer's error is not the fail-open layer's: it passes unchanged.
    with pytest.raises(RuntimeError, match="inner layer broke"):
        await orchestrator(place(Passes(), fail_open=True), Broken()).execute("hi")


async def test_a_fail_open_function_middleware_is_skipped_when_it_breaks() -> None:
    async def broken_tool_layer(call: ToolCall, next: Any) -> ToolResult:
        raise LookupError("broken before next")

    agent = Agent("assistant", model=ScriptedModel(tool_then_answer), tools=[lookup])
    runner = Orchestrator(agent, middleware=[place(broken_tool_layer, fail_open=True)])
    assert (await runner.execute("hi")).output == "answer"


async def test_fail_open_async_hooks_are_skipped_only_when_they_break() -> None:
    seen: list[str] = []

    class AsyncHooks(BaseMiddleware):
        async def before_model(self, context: RunContext, request: ModelRequest) -> None:
            seen.append("before")
            raise KeyError("async hook broke")

        async def after_model(
            self, context: RunContext, request: ModelRequest, response: ModelResponse
        ) -> ModelResponse:
            seen.append("after")
            return ModelResponse(message=response.message, usage=response.usage, model_name="x")

    result = await orchestrator(place(AsyncHooks(), fail_open=True)).execute("hi")
    assert result.output == "answer"
    assert seen == ["before", "after"]


async def test_a_fail_open_wrap_that_refuses_still_refuses() -> None:
    class Refuses(BaseMiddleware):
        async def wrap_model_call(
            self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
        ) -> ModelResponse:
            raise RateLimitExceededError("tenant:-:all-calls", 1.0)

    with pytest.raises(RateLimitExceededError):
        await orchestrator(place(Refuses(), fail_open=True)).execute("hi")


async def test_a_fail_open_wrap_may_answer_without_calling_next() -> None:
    class Answers(BaseMiddleware):
        async def wrap_model_call(
            self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
        ) -> ModelResponse:
            return ModelResponse(message=Message.assistant("from cache"))

    result = await orchestrator(place(Answers(), fail_open=True)).execute("hi")
    assert result.output == "from cache"
