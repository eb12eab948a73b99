from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from onionskin import (
    AgentResult,
    BaseMiddleware,
    ModelRequest,
    ModelResponse,
    OnionskinError,
    RunContext,
    TenantContext,
    TenantError,
    ToolCall,
    ToolResult,
    current_context,
    current_request_metadata,
    request_metadata_scope,
)
from onionskin.testing import tool_call
from tests.conftest import AgentFactory, OrchestratorFactory


def test_current_context_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(OnionskinError, match="outside a run"):
        current_context()


def test_request_metadata_is_empty_outside_a_scope_and_merged_inside() -> None:
    assert dict(current_request_metadata()) == {}
    with request_metadata_scope({"project": "roxy", "turn": 1}):
        with request_metadata_scope({"turn": 2}) as merged:
            assert dict(merged) == {"project": "roxy", "turn": 2}
            assert current_request_metadata() == merged
        assert dict(current_request_metadata()) == {"project": "roxy", "turn": 1}
    assert dict(current_request_metadata()) == {}


def test_request_metadata_is_read_only_and_must_be_a_mapping() -> None:
    with request_metadata_scope({"a": 1}) as merged, pytest.raises(TypeError):
        merged["a"] = 2  # type: ignore[index]  # the point: it is read-only
    scope = request_metadata_scope(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        scope.__enter__()


class Witness(BaseMiddleware):
    """Checks, at every hook, that the context is the run's own."""

    def __init__(self) -> None:
        self.mismatches: list[str] = []
        self.checks = 0

    def _check(self, where: str, context: RunContext) -> None:
        self.checks += 1
        expected = context.state["expected"]
        seen = (context.tenant_id, current_request_metadata().get("request"), current_context())
        if seen != (expected, expected, context):
            self.mismatches.append(f"{where}: {seen[:2]} != {expected}")

    async def before_agent(self, context: RunContext, agent_name: str) -> None:
        await asyncio.sleep(0)
        self._check("before_agent", context)

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self._check("before_model", context)

    async def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> None:
        await asyncio.sleep(0)
        self._check("after_model", context)

    def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> None:
        self._check("after_tool", context)
        if result.value != context.state["expected"]:
            self.mismatches.append(f"tool saw {result.value}")

    def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
        self._check("after_agent", context)


async def test_concurrent_runs_never_see_each_others_context(
    agent_factory: AgentFactory,
) -> None:
    """1,000 runs at once, each with its own tenant and metadata, sync and async tools."""

    def sync_whoami() -> str:
        """Report the run's tenant from a worker thread."""
        return current_context().tenant_id or ""

    async def async_whoami() -> str:
        """Report the run's tenant after yielding to other runs."""
        await asyncio.sleep(0)
        return current_request_metadata()["request"]  # type: ignore[no-any-return]

    def script(request: ModelRequest) -> Any:
        calls = sum(message.role == "tool" for message in request.messages)
        if calls == 0:
            return tool_call("sync_whoami")
        if calls == 1:
            return tool_call("async_whoami")
        return f"done for {current_context().tenant_id}"

    from onionskin import Orchestrator

    witness = Witness()
    orchestrator = Orchestrator(
        agent_factory(script, tools=[sync_whoami, async_whoami]), middleware=[witness]
    )

    async def one(index: int) -> str:
        tenant = f"tenant-{index}"
        result = await orchestrator.execute(
            "who am I?",
            context=TenantContext(tenant_id=tenant),
            metadata={"request": tenant},
            state={"expected": tenant},
        )
        return str(result.output)

    outputs = await asyncio.gather(*(one(index) for index in range(1000)))

    assert outputs == [f"done for tenant-{index}" for index in range(1000)]
    assert witness.mismatches == []
    # per run: before/after agent, 3 model calls x 2 hooks, 2 tool calls
    assert witness.checks == 1000 * 10


async def test_a_sync_tool_does_not_block_other_coroutines(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    """The tool waits for an event only another coroutine sets: a blocked loop deadlocks."""
    released = threading.Event()
    answers: list[str] = []

    def wait_for_release() -> str:
        """Block this worker thread until released."""
        answers.append("released" if released.wait(timeout=10) else "timed out")
        return answers[-1]

    async def release_soon() -> None:
        await asyncio.sleep(0.01)
        released.set()

    orchestrator = orchestrator_factory(
        [tool_call("wait_for_release"), "done"], tools=[wait_for_release]
    )
    run = asyncio.create_task(orchestrator.execute("go"))
    await release_soon()
    result = await run

    assert result.output == "done"
    assert answers == ["released"]


def test_tenant_context_refuses_unsafe_ids() -> None:
    for bad in ["", "../etc", "a/b", "a b", "x" * 129, "..", ".hidden"]:
        with pytest.raises(TenantError, match="tenant_id"):
            TenantContext(tenant_id=bad)
    with pytest.raises(TenantError, match="user_id"):
        TenantContext(tenant_id="org_abc123", user_id="../root")
    tenant = TenantContext(tenant_id="org_abc123", workspace_id="ws_default", user_id="user_456")
    assert (tenant.tenant_id, tenant.workspace_id, tenant.user_id) == (
        "org_abc123",
        "ws_default",
        "user_456",
    )


async def test_run_refuses_a_context_that_is_not_a_tenant_context(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    asked: list[ModelRequest] = []

    def script(request: ModelRequest) -> str:
        asked.append(request)
        return "hi"

    orchestrator = orchestrator_factory(script)
    with pytest.raises(TenantError, match="TenantContext"):
        await orchestrator.execute("hi", context={"tenant_id": "x"})  # type: ignore[arg-type]
    assert asked == []


async def test_middleware_context_exposes_seed_000_fields(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: dict[str, Any] = {}

    class Seed000(BaseMiddleware):
        def before_pipeline(self, context: RunContext) -> None:
            seen["pipeline_id"] = context.pipeline_id
            seen["tenant_id"] = context.tenant_id
            seen["input_keys"] = sorted(context.input_data)

        def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
            seen["current_agent"] = context.current_agent
            seen["last_duration_ms"] = context.last_duration_ms
            seen["last_cost"] = context.last_cost

        def after_pipeline(self, context: RunContext, result: Any) -> None:
            seen["total_duration_ms"] = context.total_duration_ms
            seen["total_cost"] = context.total_cost

    from decimal import Decimal

    from onionskin import Agent, Orchestrator
    from onionskin.testing import ScriptedModel

    model = ScriptedModel(["answer"], input_price_per_mtok="1", output_price_per_mtok="2")
    orchestrator = Orchestrator(Agent("style_analysis", model=model), middleware=[Seed000()])
    result = await orchestrator.execute(
        {"message": "hi", "style": "formal"}, context=TenantContext(tenant_id="org_abc123")
    )

    assert seen["pipeline_id"] == "style_analysis"
    assert seen["tenant_id"] == "org_abc123"
    assert seen["input_keys"] == ["message", "style"]
    assert seen["current_agent"] == "style_analysis"
    assert seen["last_duration_ms"] > 0
    expected = (
        Decimal(result.usage.input_tokens) * 1 + Decimal(result.usage.output_tokens) * 2
    ) / 1_000_000
    assert seen["last_cost"] == expected == seen["total_cost"] == result.cost_usd
    assert seen["total_duration_ms"] >= seen["last_duration_ms"]
