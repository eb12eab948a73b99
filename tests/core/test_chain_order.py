from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from onionskin import (
    AgentResult,
    BaseMiddleware,
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    PipelineResult,
    RunContext,
    ToolCall,
    ToolResult,
)
from onionskin.core import chain as chain_module
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Next = Callable[[Any], Awaitable[Any]]


def lookup(order_id: str) -> str:
    """Find an order."""
    return f"{order_id}: shipped"


def support_script(request: ModelRequest) -> Any:
    if request.messages[-1].role == "tool":
        return "done"
    return tool_call("lookup", order_id="A1")


class AsyncHooks(BaseMiddleware):
    """Seed 000's form: async before/after hooks for every kind."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def before_pipeline(self, context: RunContext) -> None:
        self.log.append(f"{self.name}>pipeline")

    async def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        self.log.append(f"{self.name}<pipeline")

    async def before_agent(self, context: RunContext, agent_name: str) -> None:
        self.log.append(f"{self.name}>agent")

    async def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
        self.log.append(f"{self.name}<agent")

    async def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self.log.append(f"{self.name}>model")

    async def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> None:
        self.log.append(f"{self.name}<model")

    async def before_tool(self, context: RunContext, call: ToolCall) -> None:
        self.log.append(f"{self.name}>tool")

    async def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> None:
        self.log.append(f"{self.name}<tool")


class SyncHooks(BaseMiddleware):
    """The same hooks as plain methods."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def before_pipeline(self, context: RunContext) -> None:
        self.log.append(f"{self.name}>pipeline")

    def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        self.log.append(f"{self.name}<pipeline")

    def before_agent(self, context: RunContext, agent_name: str) -> None:
        self.log.append(f"{self.name}>agent")

    def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
        self.log.append(f"{self.name}<agent")

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self.log.append(f"{self.name}>model")

    def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> None:
        self.log.append(f"{self.name}<model")

    def before_tool(self, context: RunContext, call: ToolCall) -> None:
        self.log.append(f"{self.name}>tool")

    def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> None:
        self.log.append(f"{self.name}<tool")


class Onion:
    """The onion form: wrap methods for every kind."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def _around(self, kind: str, call: Any, next: Next) -> Any:
        self.log.append(f"{self.name}>{kind}")
        result = await next(call)
        self.log.append(f"{self.name}<{kind}")
        return result

    async def wrap_pipeline(self, call: Any, next: Next) -> Any:
        return await self._around("pipeline", call, next)

    async def wrap_agent(self, call: Any, next: Next) -> Any:
        return await self._around("agent", call, next)

    async def wrap_model_call(self, call: Any, next: Next) -> Any:
        return await self._around("model", call, next)

    async def wrap_tool_call(self, call: Any, next: Next) -> Any:
        return await self._around("tool", call, next)


def function_middleware(log: list[str]) -> Callable[[ToolCall, Next], Awaitable[ToolResult]]:
    """Seed 001's plain `async def mw(call, next)`: wraps tool calls only."""

    async def audit(call: ToolCall, next: Next) -> ToolResult:
        log.append("F>tool")
        result: ToolResult = await next(call)
        log.append("F<tool")
        return result

    return audit


def expected_order(names: list[str], tool_names: list[str]) -> list[str]:
    """Nested order: befores in registration order, afters reversed, per call."""

    def nest(kind: str, inner: list[str], who: list[str]) -> list[str]:
        return [f"{n}>{kind}" for n in who] + inner + [f"{n}<{kind}" for n in reversed(who)]

    model = nest("model", [], names)
    tool = nest("tool", [], tool_names)
    agent = nest("agent", model + tool + model, names)
    return nest("pipeline", agent, names)


async def test_order_for_all_kinds_with_hook_and_onion_forms_mixed(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    log: list[str] = []
    middleware: list[object] = [
        AsyncHooks("A", log),
        Onion("B", log),
        function_middleware(log),
        SyncHooks("C", log),
        SyncHooks("D", log),
        Onion("E", log),
        AsyncHooks("G", log),
    ]
    orchestrator = orchestrator_factory(support_script, middleware=middleware, tools=[lookup])

    result = await orchestrator.execute("where is A1?")

    assert result.output == "done"
    assert log == expected_order(
        ["A", "B", "C", "D", "E", "G"], ["A", "B", "F", "C", "D", "E", "G"]
    )


async def test_use_appends_inside_existing_layers(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    log: list[str] = []
    orchestrator = orchestrator_factory(["hi"])
    orchestrator.use(SyncHooks("outer", log)).use(Onion("inner", log))

    await orchestrator.execute("hello")

    assert log[:4] == ["outer>pipeline", "inner>pipeline", "outer>agent", "inner>agent"]
    assert log[-2:] == ["inner<pipeline", "outer<pipeline"]


class RewritingHooks(BaseMiddleware):
    """Replaces the request on the way in and the response on the way out."""

    def __init__(self, tag: str, seen: list[tuple[str, str]]) -> None:
        self.tag = tag
        self.seen = seen

    def before_model(self, context: RunContext, request: ModelRequest) -> ModelRequest:
        note = Message.system(f"note from {self.tag}")
        return replace(request, messages=[*request.messages, note])

    def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> ModelResponse:
        self.seen.append((self.tag, request.messages[-1].text))
        text = f"{response.message.text}+{self.tag}"
        return replace(response, message=Message.assistant(text))


async def test_before_hooks_replace_requests_and_after_hooks_replace_responses(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    received: list[list[str]] = []
    seen: list[tuple[str, str]] = []

    def script(request: ModelRequest) -> str:
        received.append([message.text for message in request.messages])
        return "answer"

    orchestrator = orchestrator_factory(
        script, middleware=[RewritingHooks("outer", seen), RewritingHooks("inner", seen)]
    )
    result = await orchestrator.execute("question")

    assert received == [["question", "note from outer", "note from inner"]]
    # after hooks run innermost first, and each sees the request as its own layer passed it
    assert seen == [("inner", "note from inner"), ("outer", "note from outer")]
    assert result.output == "answer+inner+outer"


def test_an_object_without_hooks_is_refused_and_the_stack_is_unchanged(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(["hi"], middleware=[SyncHooks("A", [])])

    with pytest.raises(ConfigError, match="is not a middleware"):
        orchestrator.use(object())
    with pytest.raises(ConfigError, match="is not a middleware"):
        orchestrator.use(BaseMiddleware())

    assert len(orchestrator.middleware) == 1


async def test_chains_are_composed_once_per_stack_change(
    orchestrator_factory: OrchestratorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    folds: list[int] = []
    original = chain_module.compile_stack

    def counting(*args: Any, **kwargs: Any) -> chain_module.CompiledStack:
        folds.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(chain_module, "compile_stack", counting)
    orchestrator = orchestrator_factory(lambda request: "hi", middleware=[SyncHooks("A", [])])

    for _ in range(5):
        await orchestrator.execute("hello")
    assert len(folds) == 1

    orchestrator.use(Onion("B", []))
    for _ in range(3):
        await orchestrator.execute("hello")
    assert len(folds) == 2


def test_a_middleware_without_hooks_for_a_kind_adds_no_layer_to_it() -> None:
    class PipelineOnly(BaseMiddleware):
        def before_pipeline(self, context: RunContext) -> None:
            return None

    async def terminal(call: Any) -> Any:
        return call

    terminals = chain_module.Terminals(
        pipeline=terminal, agent=terminal, model=terminal, tool=terminal
    )
    stack = chain_module.MiddlewareStack(terminals, [PipelineOnly(), PipelineOnly()])
    compiled = stack.compiled()

    assert compiled.model is terminal
    assert compiled.tool is terminal
    assert compiled.agent is terminal
    assert compiled.pipeline is not terminal


async def test_orchestrator_accepts_middleware_in_constructor_and_lists_it() -> None:
    from onionskin import Agent
    from onionskin.testing import ScriptedModel

    first, second = SyncHooks("A", []), Onion("B", [])
    orchestrator = Orchestrator(Agent("a", model=ScriptedModel(["x"])), middleware=[first, second])
    assert orchestrator.middleware == (first, second)
