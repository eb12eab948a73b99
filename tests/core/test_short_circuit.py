from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from onionskin import (
    AgentCall,
    AgentResult,
    BaseMiddleware,
    Message,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    RunCompleted,
    RunContext,
    RunFailed,
    StopProcessing,
    ToolCall,
    ToolResult,
)
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Next = Callable[[Any], Awaitable[Any]]


class Recorder:
    """Records what the model and the tool were asked."""

    def __init__(self) -> None:
        self.model_calls = 0
        self.tool_calls = 0

    def script(self, request: ModelRequest) -> Any:
        self.model_calls += 1
        if request.messages[-1].role == "tool":
            return f"final: {request.messages[-1].parts[0]}"
        return tool_call("lookup", order_id="A1")

    def lookup(self, order_id: str) -> str:
        """Find an order."""
        self.tool_calls += 1
        return "shipped"


class AnswerPipeline:
    async def wrap_pipeline(self, call: PipelineCall, next: Next) -> PipelineResult:
        return PipelineResult(output="cached run")


class AnswerAgent:
    async def wrap_agent(self, call: AgentCall, next: Next) -> AgentResult:
        return AgentResult(agent_name=call.agent_name, output="cached turn")


class AnswerModel:
    async def wrap_model_call(self, request: ModelRequest, next: Next) -> ModelResponse:
        return ModelResponse(message=Message.assistant("cached answer"))


class AnswerTool:
    async def wrap_tool_call(self, call: ToolCall, next: Next) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="cached value")


@pytest.mark.parametrize(
    ("middleware", "output", "model_calls", "tool_calls"),
    [
        (AnswerPipeline(), "cached run", 0, 0),
        (AnswerAgent(), "cached turn", 0, 0),
        (AnswerModel(), "cached answer", 0, 0),
        (AnswerTool(), "final: ", 2, 0),
    ],
    ids=["pipeline", "agent", "model", "tool"],
)
async def test_a_wrap_can_answer_without_calling_next(
    orchestrator_factory: OrchestratorFactory,
    middleware: object,
    output: str,
    model_calls: int,
    tool_calls: int,
) -> None:
    recorder = Recorder()
    orchestrator = orchestrator_factory(
        recorder.script, middleware=[middleware], tools=[recorder.lookup]
    )

    result = await orchestrator.execute("where is A1?")

    assert str(result.output).startswith(output)
    assert (recorder.model_calls, recorder.tool_calls) == (model_calls, tool_calls)
    if isinstance(middleware, AnswerTool):
        assert "cached value" in str(result.output)


class StopAt(BaseMiddleware):
    """Raises StopProcessing from the before hook of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.errors: list[BaseException] = []

    def _maybe_stop(self, kind: str) -> None:
        if kind == self.kind:
            raise StopProcessing(f"stopped at {kind}")

    def before_pipeline(self, context: RunContext) -> None:
        self._maybe_stop("pipeline")

    def before_agent(self, context: RunContext, agent_name: str) -> None:
        self._maybe_stop("agent")

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self._maybe_stop("model")

    def before_tool(self, context: RunContext, call: ToolCall) -> None:
        self._maybe_stop("tool")

    def on_error(self, context: RunContext, error: BaseException) -> None:
        self.errors.append(error)


@pytest.mark.parametrize("kind", ["pipeline", "agent", "model", "tool"])
async def test_stop_processing_completes_the_run_with_its_response(
    orchestrator_factory: OrchestratorFactory, kind: str
) -> None:
    recorder = Recorder()
    stopper = StopAt(kind)
    orchestrator = orchestrator_factory(
        recorder.script, middleware=[stopper], tools=[recorder.lookup]
    )

    result = await orchestrator.execute("where is A1?")

    assert result.status == "completed"
    assert result.stopped is True
    assert result.output == f"stopped at {kind}"
    assert stopper.errors == []
    assert recorder.tool_calls == 0


async def test_stop_processing_from_a_tool_completes_the_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def lookup(order_id: str) -> str:
        """Find an order."""
        raise StopProcessing({"handoff": "human"})

    orchestrator = orchestrator_factory([tool_call("lookup", order_id="A1")], tools=[lookup])
    result = await orchestrator.execute("where is A1?")

    assert result.stopped
    assert result.output == {"handoff": "human"}


async def test_stop_processing_is_not_caught_by_except_exception_layers(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    swallowed: list[BaseException] = []

    class CatchAll:
        async def wrap_model_call(self, request: ModelRequest, next: Next) -> ModelResponse:
            try:
                result: ModelResponse = await next(request)
            except Exception as error:
                swallowed.append(error)
                return ModelResponse(message=Message.assistant("swallowed"))
            return result

    orchestrator = orchestrator_factory(["unused"], middleware=[CatchAll(), StopAt("model")])
    result = await orchestrator.execute("hi")

    assert result.stopped
    assert swallowed == []


class Boom(Exception):
    pass


class ErrorLog(BaseMiddleware):
    def __init__(self, name: str, log: list[tuple[str, BaseException]]) -> None:
        self.name = name
        self.log = log

    async def on_error(self, context: RunContext, error: BaseException) -> None:
        self.log.append((self.name, error))


class RaiseAt(BaseMiddleware):
    def __init__(self, kind: str, error: BaseException) -> None:
        self.kind = kind
        self.error = error

    def before_pipeline(self, context: RunContext) -> None:
        if self.kind == "pipeline":
            raise self.error

    def before_agent(self, context: RunContext, agent_name: str) -> None:
        if self.kind == "agent":
            raise self.error

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        if self.kind == "model":
            raise self.error

    def before_tool(self, context: RunContext, call: ToolCall) -> None:
        if self.kind == "tool":
            raise self.error


@pytest.mark.parametrize("kind", ["pipeline", "agent", "model", "tool"])
async def test_an_exception_fails_the_run_runs_on_error_in_reverse_and_reaches_the_caller(
    orchestrator_factory: OrchestratorFactory, kind: str
) -> None:
    recorder = Recorder()
    log: list[tuple[str, BaseException]] = []
    error = Boom(f"broken {kind}")
    orchestrator = orchestrator_factory(
        recorder.script,
        middleware=[ErrorLog("first", log), ErrorLog("second", log), RaiseAt(kind, error)],
        tools=[recorder.lookup],
    )

    with pytest.raises(Boom) as raised:
        await orchestrator.execute("where is A1?")

    assert raised.value is error
    assert log == [("second", error), ("first", error)]
    assert recorder.tool_calls == 0


async def test_a_failing_on_error_hook_is_logged_and_the_original_error_still_propagates(
    orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[tuple[str, BaseException]] = []

    class BrokenHandler(BaseMiddleware):
        def on_error(self, context: RunContext, error: BaseException) -> None:
            raise RuntimeError("the error hook itself broke")

    error = Boom("original")
    orchestrator = orchestrator_factory(
        ["unused"],
        middleware=[ErrorLog("outer", log), BrokenHandler(), RaiseAt("model", error)],
    )
    with caplog.at_level(logging.ERROR), pytest.raises(Boom) as raised:
        await orchestrator.execute("hi")

    assert raised.value is error
    assert log == [("outer", error)]
    assert "on_error hook" in caplog.text


async def test_after_hooks_do_not_run_when_an_inner_layer_fails(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    afters: list[str] = []

    class After(BaseMiddleware):
        def after_model(
            self, context: RunContext, request: ModelRequest, response: ModelResponse
        ) -> None:
            afters.append("model")

        def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
            afters.append("agent")

    orchestrator = orchestrator_factory(
        ["unused"], middleware=[After(), RaiseAt("model", Boom("x"))]
    )
    with pytest.raises(Boom):
        await orchestrator.execute("hi")
    assert afters == []


async def test_run_yields_run_failed_then_raises_the_original_error(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    error = Boom("in the model")
    orchestrator = orchestrator_factory(["unused"], middleware=[RaiseAt("model", error)])
    events: list[object] = []

    async def consume() -> None:
        async for event in orchestrator.run("hi"):
            events.append(event)

    with pytest.raises(Boom) as raised:
        await consume()

    assert raised.value is error
    assert isinstance(events[-1], RunFailed)
    assert events[-1].error_type == "Boom"


async def test_run_with_stop_processing_ends_with_a_stopped_completion(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(["unused"], middleware=[StopAt("agent")])
    events = [event async for event in orchestrator.run("hi")]

    last = events[-1]
    assert isinstance(last, RunCompleted)
    assert last.stopped
    assert last.output == "stopped at agent"
