"""Every way to write a middleware produces the same chain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from onionskin import (
    AgentResult,
    BaseMiddleware,
    Message,
    ModelRequest,
    ModelResponse,
    PipelineResult,
    RunContext,
    TenantContext,
    ToolCall,
    ToolResult,
    current_request_metadata,
)
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Next = Callable[[Any], Awaitable[Any]]


def echo(text: str) -> str:
    """Repeat the text."""
    return text


def echo_script(request: ModelRequest) -> Any:
    last = request.messages[-1]
    if last.role == "tool":
        return f"tool said {last.parts[0].content}"  # type: ignore[union-attr]
    return tool_call("echo", text="original")


async def test_a_sync_onion_function_can_pass_through_or_answer(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[str] = []

    def passing(call: ToolCall, next: Next) -> Awaitable[ToolResult]:
        seen.append(call.tool_name)
        return next(call)

    def answering(call: ToolCall, next: Next) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="from the sync layer")

    orchestrator = orchestrator_factory(echo_script, middleware=[passing], tools=[echo])
    assert (await orchestrator.execute("go")).output == "tool said original"
    assert seen == ["echo"]

    orchestrator = orchestrator_factory(echo_script, middleware=[answering], tools=[echo])
    assert (await orchestrator.execute("go")).output == "tool said from the sync layer"


async def test_an_object_with_async_call_wraps_tool_calls_like_seed_001(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    class AuditMiddleware:
        def __init__(self) -> None:
            self.trail: list[tuple[str, str, float]] = []

        async def __call__(self, call: ToolCall, next: Next) -> ToolResult:
            try:
                result: ToolResult = await next(call)
            except Exception:
                self.trail.append((call.tool_name, "failure", 0.0))
                raise
            self.trail.append((call.tool_name, "success", result.execution_time_ms))
            return result

    audit = AuditMiddleware()
    orchestrator = orchestrator_factory(echo_script, middleware=[audit], tools=[echo])
    await orchestrator.execute("go")

    assert [(name, status) for name, status, _ in audit.trail] == [("echo", "success")]
    assert audit.trail[0][2] >= 0


async def test_base_middleware_defaults_pass_through_when_called_through_super() -> None:
    base = BaseMiddleware()
    request = ModelRequest(model=None, messages=[])  # type: ignore[arg-type]  # not called
    response = ModelResponse(message=Message.assistant("x"))

    async def model_next(_: ModelRequest) -> ModelResponse:
        return response

    assert await base.wrap_model_call(request, model_next) is response
    call = ToolCall(tool_name="t")
    tool_result = ToolResult(tool_name="t")
    agent_result = AgentResult(agent_name="a", output=1)
    run_result = PipelineResult(output=1)

    async def tool_next(_: ToolCall) -> ToolResult:
        return tool_result

    async def agent_next(_: Any) -> AgentResult:
        return agent_result

    async def run_next(_: Any) -> PipelineResult:
        return run_result

    anything: Any = object()
    assert await base.wrap_tool_call(call, tool_next) is tool_result
    assert await base.wrap_agent(anything, agent_next) is agent_result
    assert await base.wrap_pipeline(anything, run_next) is run_result
    ctx: Any = None
    assert base.before_pipeline(ctx) is None
    assert base.after_pipeline(ctx, PipelineResult(output=1)) is None
    assert base.before_agent(ctx, "a") is None
    assert base.after_agent(ctx, "a", AgentResult(agent_name="a", output=1)) is None
    assert base.before_model(ctx, request) is None
    assert base.after_model(ctx, request, response) is None
    assert base.before_tool(ctx, ToolCall(tool_name="t")) is None
    assert base.after_tool(ctx, ToolCall(tool_name="t"), ToolResult(tool_name="t")) is None
    assert base.on_error(ctx, RuntimeError()) is None
    assert base.logger.name == "onionskin.core.middleware.BaseMiddleware"


class Replacer(BaseMiddleware):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def after_agent(
        self, context: RunContext, agent_name: str, result: AgentResult
    ) -> AgentResult:
        return replace(result, output=f"{result.output}|agent:{self.tag}")

    def after_pipeline(self, context: RunContext, result: PipelineResult) -> PipelineResult:
        return replace(result, output=f"{result.output}|run:{self.tag}")

    async def before_tool(self, context: RunContext, call: ToolCall) -> ToolCall:
        return replace(call, kwargs={"text": f"{call.kwargs['text']}+{self.tag}"})

    def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> ToolResult:
        return replace(result, value=f"{result.value}/{self.tag}")


async def test_hooks_replace_results_at_every_kind_alone_and_fused(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(echo_script, middleware=[Replacer("x")], tools=[echo])
    result = await orchestrator.execute("go")
    assert result.output == "tool said original+x/x|agent:x|run:x"

    fused = orchestrator_factory(
        echo_script, middleware=[Replacer("outer"), Replacer("inner")], tools=[echo]
    )
    result = await fused.execute("go")
    assert result.output == (
        "tool said original+outer+inner/inner/outer|agent:inner|agent:outer|run:inner|run:outer"
    )


async def test_run_context_and_metadata_reach_hooks_through_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[Any] = []

    class Reader(BaseMiddleware):
        def before_agent(self, context: RunContext, agent_name: str) -> None:
            seen.append((context.user_id, dict(current_request_metadata())))

    orchestrator = orchestrator_factory(["hi"], middleware=[Reader()])
    tenant = TenantContext(tenant_id="org_abc123", user_id="user_456")
    events = [e async for e in orchestrator.run("hi", context=tenant, metadata={"scope": "p1"})]

    assert seen == [("user_456", {"scope": "p1"})]
    assert events[-1].type == "run_completed"
