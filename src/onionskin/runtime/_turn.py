"""One agent's turn: call the model, run the tools it asks for, until it answers."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

import pydantic_core

from onionskin.core.calls import AgentCall, AgentResult, ModelRequest, ToolCall, ToolResult
from onionskin.core.context import AgentStats, RunContext, current_context
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


async def _run_tools(
    ctx: RunContext,
    agent: Agent,
    requests: list[ToolCallPart],
    done: tuple[ToolReturnPart, ...] = (),
) -> Message:
    chain = ctx.chains.tool
    # A resumed turn starts with the results of the calls that already ran.
    parts: list[Part] = list(done)
    ctx.progress.tool_returns = parts
    stats = ctx.current_stats or ctx.enter_agent(agent.name)
    tools = agent.tools
    for requested in requests[len(done) :]:
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
        parts.append(tool_return(call, result))
    return Message("tool", parts)


def tool_return(call: ToolCall, result: ToolResult) -> ToolReturnPart:
    """The part that tells the model what `call` returned."""
    return ToolReturnPart(
        tool_name=call.tool_name,
        content=tool_result_text(result),
        call_id=call.call_id,
        is_error=result.error is not None,
    )


def _start_turn(ctx: RunContext, agent: Agent, call: AgentCall) -> list[Message]:
    resume = ctx.resume
    if resume is not None and resume.turn_agent == agent.name:
        ctx.resume = None
        return list(resume.turn_messages)
    messages: list[Message] = []
    instructions = agent.prompt.render(ctx.state)
    if instructions:
        messages.append(Message.system(instructions))
    messages.append(call.content)
    return messages


async def run_agent_turn(agent: Agent, call: AgentCall) -> AgentResult:
    """Run `agent` on `call.content` inside the current run."""
    ctx = current_context()
    started = time.perf_counter()
    stats = ctx.current_stats
    if stats is None or ctx.current_agent != agent.name:
        # A wrap_agent layer may have redirected the call to another agent: count it there.
        stats = ctx.enter_agent(agent.name)
    cost_before = stats.cost
    resume = ctx.resume
    messages = _start_turn(ctx, agent, call)
    progress = ctx.progress
    progress.turn_agent = agent.name
    progress.turn_messages = messages
    progress.tool_returns = None
    last = messages[-1]
    if last.role == "assistant":
        # Resumed after a model reply: finish with it, or run the tool calls still to run.
        pending = last.tool_calls
        if not pending:
            return _finish_turn(ctx, agent, stats, last, messages, started, cost_before)
        done = resume.tool_returns if resume is not None else ()
        messages.append(await _run_tools(ctx, agent, pending, done))
    chain = ctx.chains.model
    model = agent.model
    taken = sum(1 for message in messages if message.role == "assistant")
    for _ in range(agent.max_steps - taken):
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
            return _finish_turn(ctx, agent, stats, reply, messages, started, cost_before)
        messages.append(await _run_tools(ctx, agent, requests))
    raise MaxStepsExceededError(agent.name, agent.max_steps)


def _finish_turn(
    ctx: RunContext,
    agent: Agent,
    stats: AgentStats,
    reply: Message,
    messages: list[Message],
    started: float,
    cost_before: Decimal,
) -> AgentResult:
    text = reply.text
    if not text and not any(isinstance(part, DataPart) for part in reply.parts):
        raise EmptyModelResponseError(agent.name, agent.model.name)
    elapsed = (time.perf_counter() - started) * 1000.0
    ctx.last_duration_ms = elapsed
    ctx.last_cost = stats.cost - cost_before
    stats.duration_ms += elapsed
    progress = ctx.progress
    progress.turn_agent = progress.turn_messages = progress.tool_returns = None
    return AgentResult(agent_name=agent.name, output=text, messages=messages)
