from __future__ import annotations

import asyncio
from typing import Any

from onionskin import (
    CallFinished,
    CallStarted,
    ModelRequest,
    RunCompleted,
    RunStarted,
    TenantContext,
    TextDelta,
)
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory


def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


def script(request: ModelRequest) -> Any:
    if request.messages[-1].role == "tool":
        return "Your order A1 has shipped."
    return tool_call("lookup", order_id="A1")


async def test_run_yields_start_and_end_of_every_call_in_order(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(script, tools=[lookup])
    tenant = TenantContext(tenant_id="org_abc123")

    events = [event async for event in orchestrator.run("where?", context=tenant)]

    shape = [
        (type(event).__name__, getattr(event, "kind", None))
        for event in events
        if not isinstance(event, TextDelta)
    ]
    assert shape == [
        ("RunStarted", None),
        ("CallStarted", "agent"),
        ("CallStarted", "model"),
        ("CallFinished", "model"),
        ("CallStarted", "tool"),
        ("CallFinished", "tool"),
        ("CallStarted", "model"),
        ("CallFinished", "model"),
        ("CallFinished", "agent"),
        ("RunCompleted", None),
    ]
    run_id = events[0].run_id
    assert all(event.run_id == run_id and event.tenant_id == "org_abc123" for event in events)
    starts = {e.call_id for e in events if isinstance(e, CallStarted)}
    ends = {e.call_id for e in events if isinstance(e, CallFinished)}
    assert starts == ends
    assert len(starts) == 4


async def test_a_tool_that_answered_an_error_says_so_in_its_finished_event(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def wrong_arguments(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return "Sorry."
        return tool_call("lookup", order="A1")  # not lookup's parameter

    orchestrator = orchestrator_factory(wrong_arguments, tools=[lookup])
    events = [event async for event in orchestrator.run("where?")]

    finished = [e for e in events if isinstance(e, CallFinished)]
    [tool] = [e for e in finished if e.kind == "tool"]
    assert tool.error is not None
    assert "order_id" in tool.error  # what the model was told
    assert tool.to_dict()["error"] == tool.error
    assert [e.error for e in finished if e.kind != "tool"] == [None, None, None]


async def test_streamed_text_adds_up_to_the_answer(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(script, tools=[lookup])
    events = [event async for event in orchestrator.run("where?")]

    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    completed = events[-1]
    assert isinstance(completed, RunCompleted)
    assert len(deltas) > 1
    assert "".join(deltas) == completed.output == "Your order A1 has shipped."


async def test_model_call_events_carry_tokens_and_cost(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    from decimal import Decimal

    from onionskin import Agent, Orchestrator
    from onionskin.testing import ScriptedModel

    model = ScriptedModel(["hello there"], input_price_per_mtok=3, output_price_per_mtok=15)
    orchestrator = Orchestrator(Agent("a", model=model))
    events = [event async for event in orchestrator.run("hi")]

    finished = [e for e in events if isinstance(e, CallFinished) and e.kind == "model"]
    assert len(finished) == 1
    model_event = finished[0]
    expected = (Decimal(model_event.input_tokens) * 3 + model_event.output_tokens * 15) / 10**6
    assert model_event.input_tokens > 0
    assert model_event.output_tokens > 0
    assert model_event.cost_usd == expected
    completed = events[-1]
    assert isinstance(completed, RunCompleted)
    assert completed.cost_usd == expected


async def test_execute_with_on_event_sees_the_same_events_as_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(script, tools=[lookup])
    seen: list[object] = []
    result = await orchestrator.execute("where?", on_event=seen.append)

    assert isinstance(seen[0], RunStarted)
    assert isinstance(seen[-1], RunCompleted)
    assert seen[-1].output == result.output


async def test_leaving_the_loop_early_cancels_the_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(order_id: str) -> str:
        """Wait forever, unless cancelled."""
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    orchestrator = orchestrator_factory([tool_call("slow", order_id="A1")], tools=[slow])
    iterator = orchestrator.run("go")
    async for event in iterator:
        if isinstance(event, CallStarted) and event.kind == "tool":
            await started.wait()
            break
    await iterator.aclose()  # type: ignore[attr-defined]  # an async generator

    assert cancelled.is_set()


def test_events_serialise_to_json_ready_dicts() -> None:
    from decimal import Decimal

    event = CallFinished(
        run_id="r",
        kind="model",
        name="m",
        call_id="c",
        duration_ms=1.5,
        cost_usd=Decimal("0.000123"),
    )
    data = event.to_dict()
    assert data["type"] == "call_finished"
    assert data["cost_usd"] == "0.000123"
    assert data["kind"] == "model"
