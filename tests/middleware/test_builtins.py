from __future__ import annotations

import logging

import pytest

from onionskin import ModelError, ModelRequest, TenantContext, TenantError
from onionskin.middleware import LoggingMiddleware, TenantMiddleware, TimingMiddleware
from onionskin.middleware.timing import CallTiming
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def script(self, request: ModelRequest) -> str:
        self.calls += 1
        return "hi"


async def test_tenant_middleware_refuses_a_run_without_tenant_before_anything_runs(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    counter = Counter()
    orchestrator = orchestrator_factory(counter.script, middleware=[TenantMiddleware()])

    with pytest.raises(TenantError, match="no tenant"):
        await orchestrator.execute("hi")
    assert counter.calls == 0


async def test_tenant_middleware_takes_the_tenant_from_request_metadata(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    from onionskin import current_context

    def script(request: ModelRequest) -> str:
        tenant = current_context().tenant
        assert tenant is not None
        return f"{tenant.tenant_id}/{tenant.user_id}"

    orchestrator = orchestrator_factory(script, middleware=[TenantMiddleware()])
    result = await orchestrator.execute(
        "hi", metadata={"tenant_id": "org_abc123", "user_id": "user_456"}
    )
    assert result.tenant_id == "org_abc123"
    assert result.output == "org_abc123/user_456"


async def test_tenant_middleware_refuses_conflicting_tenants(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    counter = Counter()
    orchestrator = orchestrator_factory(counter.script, middleware=[TenantMiddleware()])
    with pytest.raises(TenantError, match="two tenants"):
        await orchestrator.execute(
            "hi", context=TenantContext(tenant_id="org_a"), metadata={"tenant_id": "org_b"}
        )
    assert counter.calls == 0


async def test_tenant_middleware_optional_lets_runs_without_tenant_through(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(["hi"], middleware=[TenantMiddleware(required=False)])
    assert (await orchestrator.execute("hi")).output == "hi"


async def test_logging_middleware_logs_pipeline_and_agents(
    orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    orchestrator = orchestrator_factory(["hi"], middleware=[LoggingMiddleware()])
    with caplog.at_level(logging.INFO, logger="onionskin.run"):
        await orchestrator.execute("hi", context=TenantContext(tenant_id="org_a"))
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith("pipeline assistant started")
    assert "tenant org_a" in lines[0]
    assert lines[1] == "agent assistant started"
    assert lines[2].startswith("agent assistant completed in")
    assert lines[3].startswith("pipeline assistant completed in")


async def test_logging_middleware_logs_the_failing_agent(
    orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    orchestrator = orchestrator_factory([], middleware=[LoggingMiddleware()])
    with caplog.at_level(logging.INFO, logger="onionskin.run"), pytest.raises(ModelError):
        await orchestrator.execute("hi")
    assert "failed in agent assistant" in caplog.records[-1].getMessage()


async def test_timing_middleware_records_every_model_and_tool_call(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def lookup(order_id: str) -> str:
        """Find an order."""
        return "shipped"

    orchestrator = orchestrator_factory(
        [tool_call("lookup", order_id="A1"), "done"],
        middleware=[TimingMiddleware()],
        tools=[lookup],
    )
    result = await orchestrator.execute("where?")

    timings = result.state["timings"]
    assert [(t.kind, t.name, t.agent) for t in timings] == [
        ("model", "scripted", "assistant"),
        ("tool", "lookup", "assistant"),
        ("model", "scripted", "assistant"),
    ]
    assert all(isinstance(t, CallTiming) and t.duration_ms >= 0 for t in timings)
