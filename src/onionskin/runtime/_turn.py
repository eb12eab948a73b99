"""One agent's turn: call the model, run the tools it asks for, until it answers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pydantic_core

from onionskin.core.calls import AgentCall, AgentResult, ModelRequest, ToolCall, ToolResult
from onionskin.core.context import RunContext, current_context
from onionskin.core.errors import EmptyModelResponseError, MaxStepsExceededError
from onionskin.core.messages import DataPart, Message, Part, ToolCallPart, ToolReturnPart
from onionskin.runtime._observe import observed_call
from onionskin.runtime.tool import UnknownTool

if TYPE_CHECKING:
    from onionskin.runtime.agent import Agent


def tool_result_text(result: ToolResult) -> str:
    """What the model reads of a tool result: its error, its text, or its value as JSON."""
    if result.error is not None:
        return result.error
    value = result.value
    if isinstance(value, str):
        return value
    return pydantic_core.to_json(value, fallback=str).decode()


async def _run_tools(ctx: RunContext, agent: Agent, requests: list[ToolCallPart]) -> Message:
    chain = ctx.chains.tool
    parts: list[Part] = []
    stats = ctx.current_stats or ctx.enter_agent(agent.name)
    tools = agent.tools
    for requested in requests:
        name = requested.tool_name
        call = ToolCall(
            tool_name=name,
            kwargs=dict(requested.args),
            call_id=requested.call_id,
            session_id=ctx.run_id,
            tool=tools.get(name) or UnknownTool(name, agent.tool_names),
        )
        if ctx.emit is None:
            result = await chain(call)
        else:
            result = await observed_call(ctx, "tool", call.tool_name, chain, call)
        stats.tool_calls += 1
        parts.append(
            ToolReturnPart(
                tool_name=call.tool_name,
                content=tool_result_text(result),
                call_id=call.call_id,
                is_error=result.error is not None,
            )
        )
    return Message("tool", parts)


async def run_agent_turn(agent: Agent, call: AgentCall) -> AgentResult:
    """Run `agent` on `call.content` inside the current run."""
    ctx = current_context()
    started = time.perf_counter()
    stats = ctx.current_stats
    if stats is None or ctx.current_agent != agent.name:
        # A wrap_agent layer may have redirected the call to another agent: count it there.
        stats = ctx.enter_agent(agent.name)
    cost_before = stats.cost
    messages: list[Message] = []
    instructions = agent.prompt.render(ctx.state)
    if instructions:
        messages.append(Message.system(instructions))
    messages.append(call.content)
    chain = ctx.chains.model
    model = agent.model
    for _ in range(agent.max_steps):
        request = ModelRequest(
            model=model,
            messages=list(messages),
            tools=agent.tool_definitions,
            settings=agent.settings,
        )
        if ctx.emit is None:
            response = await chain(request)
        else:
            response = await observed_call(ctx, "model", model.name, chain, request)
        reply = response.message
        messages.append(reply)
        requests = reply.tool_calls
        if not requests:
            text = reply.text
            if not text and not any(isinstance(part, DataPart) for part in reply.parts):
                raise EmptyModelResponseError(agent.name, model.name)
            elapsed = (time.perf_counter() - started) * 1000.0
            ctx.last_duration_ms = elapsed
            ctx.last_cost = stats.cost - cost_before
            stats.duration_ms += elapsed
            return AgentResult(agent_name=agent.name, output=text, messages=messages)
        messages.append(await _run_tools(ctx, agent, requests))
    raise MaxStepsExceededError(agent.name, agent.max_steps)
