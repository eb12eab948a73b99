"""The innermost handler of each call kind in an agent run."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from onionskin.core.calls import (
    AgentCall,
    AgentResult,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    ToolCall,
    ToolResult,
)
from onionskin.core.chain import Terminals
from onionskin.core.context import RunContext, current_context
from onionskin.core.errors import ModelError
from onionskin.core.events import EventSink, TextDelta
from onionskin.core.messages import Message
from onionskin.core.partial import note_partial_usage
from onionskin.core.usage import Usage
from onionskin.runtime.models._estimate import estimate_tokens


def _run_pipeline(call: PipelineCall) -> Coroutine[Any, Any, PipelineResult]:
    return call.pipeline.run_pipeline(call)


def _run_agent(call: AgentCall) -> Coroutine[Any, Any, AgentResult]:
    return call.agent.run_turn(call)


async def _stream(ctx: RunContext, emit: EventSink, request: ModelRequest) -> ModelResponse:
    agent = ctx.current_agent or ""
    response: ModelResponse | None = None
    streamed: list[str] = []
    try:
        async for item in request.model.stream(request):
            if isinstance(item, str):
                streamed.append(item)
                emit(TextDelta(run_id=ctx.run_id, tenant_id=ctx.tenant_id, agent=agent, text=item))
            else:
                response = item
    except BaseException as error:
        if response is None and streamed:
            _bill_partial(ctx, request, "".join(streamed), error)
        raise
    if response is None:
        raise ModelError(f"model {request.model.name!r} ended its stream without a response")
    return response


def _bill_partial(ctx: RunContext, request: ModelRequest, text: str, error: BaseException) -> None:
    """Count a stream cut off after it began: its prompt and the text already sent.

    Only once text arrived: the model had then read the prompt and begun to answer, which
    providers bill; a call refused or failed before its first token is not billed. The
    figures are estimates (no provider reports usage for a stream it did not finish).
    """
    usage = Usage(
        input_tokens=estimate_tokens(request.messages),
        output_tokens=max(estimate_tokens((Message.assistant(text),)) - 4, 1),
    )
    note_partial_usage(error, usage)
    stats = ctx.current_stats or ctx.enter_agent(ctx.current_agent or "")
    stats.usage.add(usage)
    cost = request.model.cost(usage)
    if cost:
        stats.cost += cost


async def _call_model(request: ModelRequest) -> ModelResponse:
    """Call the model (streaming when the run has a listener) and account for its usage."""
    ctx = current_context()
    model = request.model
    emit = ctx.emit
    if emit is None:
        response = await model.request(request)
    else:
        response = await _stream(ctx, emit, request)
    stats = ctx.current_stats or ctx.enter_agent(ctx.current_agent or "")
    stats.usage.add(response.usage)
    cost = model.cost(response.usage)
    if cost:
        stats.cost += cost
    stats.model_calls += 1
    return response


async def _call_tool(call: ToolCall) -> ToolResult:
    tool = call.tool
    if tool is None:
        return ToolResult(
            tool_name=call.tool_name,
            error=f"unknown tool {call.tool_name!r}",
            call_id=call.call_id,
        )
    return await tool.invoke(call)


AGENT_TERMINALS = Terminals(
    pipeline=_run_pipeline, agent=_run_agent, model=_call_model, tool=_call_tool
)
