"""Type-checked only, never executed: the public API as a user writes it (mypy --strict)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from onionskin import (
    Agent,
    AgentResult,
    BaseMiddleware,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Pipeline,
    RunContext,
    RunEvent,
    RunResult,
    StopProcessing,
    TenantContext,
    Tool,
    ToolCall,
    ToolResult,
    current_context,
    current_request_metadata,
    request_metadata_scope,
)
from onionskin.middleware import LoggingMiddleware, TenantMiddleware, TimingMiddleware
from onionskin.testing import ScriptedModel, tool_call


class Audit(BaseMiddleware):
    async def before_agent(self, context: RunContext, agent_name: str) -> None:
        if context.tenant_id is None:
            raise StopProcessing("Authentication required")

    def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> ModelResponse | None:
        return None

    async def after_agent(
        self, context: RunContext, agent_name: str, result: AgentResult
    ) -> AgentResult:
        return result


async def timed(call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]) -> ToolResult:
    return await next(call)


def lookup(order_id: str, context: RunContext) -> str:
    return f"{order_id} for {context.tenant_id}"


async def usage() -> None:
    model = ScriptedModel([tool_call("lookup", order_id="A1"), "done"], input_price_per_mtok="1")
    agent = Agent("support", model=model, instructions="Help {company}.", tools=[Tool(lookup)])
    orchestrator = Orchestrator(Pipeline([agent], name="desk"), middleware=[Audit()])
    orchestrator.use(timed).use(TenantMiddleware()).use(LoggingMiddleware())
    orchestrator.use(TimingMiddleware(key="timings"))
    tenant = TenantContext(tenant_id="org_abc123", workspace_id="ws", user_id="u1")
    result: RunResult = await orchestrator.execute("hi", context=tenant, state={"company": "A"})
    cost = result.cost_usd + result.agents["support"].cost
    del cost
    with request_metadata_scope({"project": "roxy"}):
        async for event in orchestrator.run({"message": "hi"}, context=tenant):
            handled: RunEvent = event
            del handled
    metadata = current_request_metadata()
    context = current_context()
    del metadata, context
