"""Analytics events from real scripted runs: tokens, tool calls, exact costs, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from onionskin import (
    Agent,
    BaseMiddleware,
    CallFinished,
    ModelError,
    ModelRequest,
    Orchestrator,
    RunCompleted,
    RunContext,
    StopProcessing,
    TenantContext,
)
from onionskin.analytics import AnalyticsCoordinator, AnalyticsEvent, from_run_event
from onionskin.analytics.events import money
from onionskin.core.events import RunEvent
from onionskin.testing import ScriptedModel, tool_call
from tests.analytics.conftest import EventFactory, RecordingExporter

TENANT = TenantContext(tenant_id="acme")


def lookup(order_id: str) -> str:
    """Find an order."""
    return f"order {order_id} shipped"


def order_script(request: ModelRequest) -> Any:
    if request.messages[-1].role == "tool":
        return "Your order A1 has shipped."
    return tool_call(request.tools[0].name, order_id="A1")


def priced_orchestrator(script: Any = order_script, **options: Any) -> Orchestrator:
    model = ScriptedModel(script, input_price_per_mtok="2.5", output_price_per_mtok="10")
    return Orchestrator(Agent("assistant", model=model, tools=[lookup]), **options)


async def run_collecting(orchestrator: Orchestrator, text: str = "where is A1?") -> list[RunEvent]:
    seen: list[RunEvent] = []
    await orchestrator.execute(text, context=TENANT, on_event=seen.append)
    return seen


async def test_a_run_becomes_usage_tool_and_run_events_with_exact_costs() -> None:
    seen = await run_collecting(priced_orchestrator())
    converted = [event for e in seen if (event := from_run_event(e)) is not None]

    assert [e.type for e in converted] == [
        "run_started",
        "token_usage",
        "tool_call",
        "token_usage",
        "agent_finished",
        "run_completed",
    ]
    assert {e.tenant_id for e in converted} == {"acme"}
    assert len({e.run_id for e in converted}) == 1
    assert len({e.id for e in converted}) == len(converted)
    model_calls = [e for e in seen if isinstance(e, CallFinished) and e.kind == "model"]
    usages = [e for e in converted if e.type == "token_usage"]
    for usage, call in zip(usages, model_calls, strict=True):
        expected = (call.input_tokens * Decimal("2.5") + call.output_tokens * 10) / 1_000_000
        assert usage.data["input_tokens"] == call.input_tokens > 0
        assert usage.data["output_tokens"] == call.output_tokens > 0
        assert usage.data["total_tokens"] == call.input_tokens + call.output_tokens
        assert usage.data["model"] == "scripted"
        assert usage.data["agent"] == "assistant"
        assert isinstance(usage.data["cost_usd"], str)
        assert Decimal(usage.data["cost_usd"]) == expected != 0
    tool = converted[2]
    assert tool.data["tool"] == "lookup"
    assert tool.data["agent"] == "assistant"
    assert tool.data["success"] is True
    completed = seen[-1]
    assert isinstance(completed, RunCompleted)
    total = converted[-1].data
    assert total["input_tokens"] == sum(c.input_tokens for c in model_calls)
    assert Decimal(str(total["cost_usd"])) == completed.cost_usd
    assert completed.cost_usd == sum(Decimal(str(u.data["cost_usd"])) for u in usages)
    assert total["stopped"] is False
    assert "output" not in total


def test_money_is_plain_decimal_notation_and_exact() -> None:
    assert str(Decimal("0.0000001")) == "1E-7"  # what money() avoids
    assert money(Decimal("0.0000001")) == "0.0000001"
    assert Decimal(money(Decimal("12.3456789012345678"))) == Decimal("12.3456789012345678")


def test_events_serialise_to_json_a_dashboard_reads(make_event: EventFactory) -> None:
    event = make_event("acme", "token_usage", total_tokens=42)
    document = json.loads(event.model_dump_json())

    assert document["type"] == "token_usage"
    assert document["data"] == {"total_tokens": 42}
    assert datetime.fromisoformat(document["timestamp"]).tzinfo is not None
    assert AnalyticsEvent.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant_id", "acme:other"),
        ("tenant_id", "../etc"),
        ("tenant_id", ""),
        ("type", "Token Usage"),
        ("type", ""),
        ("timestamp", datetime(2026, 1, 1)),  # naive: whose midnight?
    ],
)
def test_bad_event_fields_are_refused_by_name(field: str, value: object) -> None:
    fields: dict[str, Any] = {"type": "custom", field: value}
    with pytest.raises(ValidationError) as caught:
        AnalyticsEvent(**fields)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_events_are_frozen(make_event: EventFactory) -> None:
    event = make_event("acme")
    with pytest.raises(ValidationError):
        event.tenant_id = "other"  # type: ignore[misc]  # the point: frozen
    assert event.tenant_id == "acme"


# --- the coordinator's two forms agree --------------------------------------------------------

Attach = Callable[[Orchestrator, AnalyticsCoordinator], Any]


async def _as_sink(orchestrator: Orchestrator, coordinator: AnalyticsCoordinator) -> Any:
    return await orchestrator.execute("where is A1?", context=TENANT, on_event=coordinator)


async def _as_middleware(orchestrator: Orchestrator, coordinator: AnalyticsCoordinator) -> Any:
    orchestrator.use(coordinator)
    return await orchestrator.execute("where is A1?", context=TENANT)


FORMS = pytest.mark.parametrize("attach", [_as_sink, _as_middleware], ids=["sink", "middleware"])


def _shape(events: list[AnalyticsEvent]) -> list[tuple[str, dict[str, Any]]]:
    """Types and data without the per-call ids and timings."""
    varying = {"call_id", "duration_ms"}
    return [(e.type, {k: v for k, v in e.data.items() if k not in varying}) for e in events]


async def test_middleware_and_sink_forms_record_the_same_events() -> None:
    shapes = []
    for attach in (_as_sink, _as_middleware):
        exporter = RecordingExporter()
        coordinator = AnalyticsCoordinator([exporter])
        await attach(priced_orchestrator(), coordinator)
        await coordinator.flush()
        shapes.append(_shape(exporter.events))
        assert {e.tenant_id for e in exporter.events} == {"acme"}

    assert shapes[0] == shapes[1]
    assert [kind for kind, _ in shapes[0]][:2] == ["run_started", "token_usage"]


@FORMS
async def test_a_failed_model_call_fails_agent_and_run(attach: Attach) -> None:
    def broken(request: ModelRequest) -> Any:
        raise ModelError("provider down")

    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])
    with pytest.raises(ModelError):
        await attach(priced_orchestrator(broken), coordinator)
    await coordinator.flush()

    assert [e.type for e in exporter.events] == [
        "run_started",
        "model_error",
        "agent_failed",
        "run_failed",
    ]
    failure = exporter.events[-1].data
    assert failure["error_type"] == "ModelError"
    assert failure["error"] == "provider down"
    assert exporter.events[1].data["model"] == "scripted"


class Stop(BaseMiddleware):
    def before_agent(self, context: RunContext, agent_name: str) -> None:
        raise StopProcessing("closed today")


@FORMS
async def test_a_stopped_run_is_completed_and_says_stopped(attach: Attach) -> None:
    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])
    result = await attach(priced_orchestrator(middleware=[Stop()]), coordinator)
    await coordinator.flush()

    assert result.output == "closed today"
    assert [e.type for e in exporter.events] == ["run_started", "run_completed"]
    assert exporter.events[-1].data["stopped"] is True


@FORMS
async def test_a_tool_error_result_is_a_failed_tool_call(attach: Attach) -> None:
    def hallucinating(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return "Sorry."
        return tool_call("delete_everything")

    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])
    await attach(priced_orchestrator(hallucinating), coordinator)
    await coordinator.flush()

    [tool] = [e for e in exporter.events if e.type == "tool_call"]
    assert tool.data["tool"] == "delete_everything"
    assert tool.data["success"] is False
    assert "unknown tool" in str(tool.data["error"])


async def test_attached_both_ways_a_run_is_recorded_once() -> None:
    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])
    orchestrator = priced_orchestrator(middleware=[coordinator])
    await orchestrator.execute("where is A1?", context=TENANT, on_event=coordinator)
    await coordinator.flush()

    types = [e.type for e in exporter.events]
    assert types.count("run_started") == 1
    assert types.count("token_usage") == 2
    assert types.count("tool_call") == 1


async def test_long_error_messages_are_cut(make_event: EventFactory) -> None:
    def broken(request: ModelRequest) -> Any:
        raise ModelError("x" * 5000)

    seen: list[RunEvent] = []
    with pytest.raises(ModelError):
        await priced_orchestrator(broken).execute("hi", on_event=seen.append)
    failed = [a for e in seen if (a := from_run_event(e)) is not None and a.type == "run_failed"]

    assert 0 < len(str(failed[0].data["error"])) <= 500
    assert failed[0].tenant_id is None
    assert failed[0].timestamp <= datetime.now(UTC)


@FORMS
async def test_a_raising_tool_is_a_failed_tool_call(attach: Attach) -> None:
    def explode(order_id: str) -> str:
        """Find an order, badly."""
        raise RuntimeError(f"database down for {order_id}")

    model = ScriptedModel(order_script)
    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])
    orchestrator = Orchestrator(Agent("assistant", model=model, tools=[explode]))
    with pytest.raises(RuntimeError):
        await attach(orchestrator, coordinator)
    await coordinator.flush()

    types = [e.type for e in exporter.events]
    assert types == ["run_started", "token_usage", "tool_call", "agent_failed", "run_failed"]
    tool = exporter.events[2].data
    assert tool["success"] is False
    assert tool["error_type"] == "RuntimeError"
    assert tool["error"] == "database down for A1"
    assert coordinator.exporters == (exporter,)
