"""Type-checked only, never executed: the public API as a user writes it (mypy --strict)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Literal

from onionskin import (
    Agent,
    AgentResult,
    BaseMiddleware,
    CircuitBreakerConfig,
    GuardConfig,
    GuardMiddleware,
    MessageCaptureMiddleware,
    MiddlewarePipeline,
    ModelExchange,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Pipeline,
    PluginConfig,
    PluginLoadResult,
    PluginRegistry,
    Project,
    ProjectError,
    RunContext,
    RunEvent,
    RunResult,
    SkippedPlugin,
    StackContract,
    StackExplanation,
    StopProcessing,
    TenantContext,
    Tool,
    ToolCall,
    ToolExchange,
    ToolResult,
    TranscriptEntry,
    UnknownAgentError,
    assemble_middleware,
    current_context,
    current_request_metadata,
    current_transcript,
    discover_entry_points,
    guard,
    load_project,
    place,
    register_middleware,
    request_metadata_scope,
)
from onionskin.middleware import (
    LoggingMiddleware,
    RateLimit,
    RetryConfig,
    TenantMiddleware,
    TimingMiddleware,
)
from onionskin.testing import FakeClock, ScriptedModel, set_testing, tool_call


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


@guard
async def search(query: str, limit: int = 3) -> list[str]:
    return [query] * limit


@guard(max_retries=2, timeout=5.0, validate_input=True)
def convert(amount: float, currency: str) -> str:
    return f"{amount} {currency}"


class Audit001(GuardMiddleware):
    async def __call__(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        return await next(call)


async def guard_usage() -> None:
    found: list[str] = await search("q", limit=1)
    text: str = convert(1.0, "USD")
    also: str = await convert.acall(2.0, "EUR")
    config = GuardConfig(
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5),
        rate_limit=RateLimit(rate=10, burst=20, per="tenant"),
        retry=RetryConfig(max_retries=3),
        clock=FakeClock(),
    )
    async with MiddlewarePipeline(config=config, extra_middleware=[Audit001()]) as pipeline:
        result: ToolResult = await pipeline.execute(search, kwargs={"query": "x"})
        status: Literal["success", "error"] = result.status
    del found, text, also, status
    with set_testing():
        pass


def placement_usage(orchestrator: Orchestrator) -> str:
    orchestrator.use(place(Audit001(), position="outermost", mandatory=True))
    orchestrator.use(place(Audit001(), name="inner", after=["Audit001"], fail_open=True))

    class Declared(BaseMiddleware):
        stack_contract = StackContract(before="Audit001", fail_open=True)

    orchestrator.use(Declared())
    explained: StackExplanation = orchestrator.explain()
    layers: list[str] = [layer.name for layer in explained.kinds["tool"]]
    del layers
    return str(explained)


def plugin_usage() -> list[object]:
    registry = PluginRegistry()

    @registry.register_middleware
    def banner(config: PluginConfig) -> BaseMiddleware | None:
        return None if config.agent is None else BaseMiddleware()

    register_middleware(banner, name="banner-default", position="innermost")
    loaded: PluginLoadResult = registry.load(PluginConfig(agent="assistant"), entry_points=False)
    skipped: tuple[SkippedPlugin, ...] = loaded.skipped
    found = discover_entry_points()
    del skipped, found
    capture = MessageCaptureMiddleware(sink=lambda entry: None)
    return assemble_middleware(
        [BaseMiddleware()], config=PluginConfig(), registry=registry, capture=capture
    )


def transcript_usage(context: RunContext) -> int:
    entries: list[TranscriptEntry] = list(current_transcript(context))
    models = [entry for entry in entries if isinstance(entry, ModelExchange)]
    tools = [entry for entry in entries if isinstance(entry, ToolExchange)]
    return len(models) + len(tools)


async def project_usage(directory: str) -> str:
    project: Project = load_project(directory)
    orchestrator = project.orchestrator("assistant", entry_points=False, capture=False)
    result = await orchestrator.execute({"role": "user", "parts": [{"text": "hi"}]})
    with contextlib.suppress(ProjectError, UnknownAgentError):
        project.orchestrator("../etc")
    return str(result.output)
