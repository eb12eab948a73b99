"""A stream cut off midway is billed what it used: budget, cost ledger and the run's totals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from onionskin import Agent, Message, ModelRequest, ModelResponse, Orchestrator, TenantContext
from onionskin.core.events import RunEvent, TextDelta
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.middleware.cost import CostMiddleware
from onionskin.pricing import to_micros
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.stores.ledger import MemoryCostLedger
from onionskin.tenancy.cost import current_period
from onionskin.testing import FakeClock, ScriptedModel

ACME = TenantContext(tenant_id="acme")
PERIOD = current_period(FakeClock())  # the ledger clocks below read time 0


class CutOffModel(ScriptedModel):
    """Streams `words`, then hangs (or fails) as a dropped connection would."""

    def __init__(self, words: list[str], *, then: BaseException | None = None) -> None:
        # $3 and $15 a token: the estimates' cost shows in whole dollars.
        super().__init__(
            ["unused"],
            name="cut-off",
            input_price_per_mtok=3_000_000,
            output_price_per_mtok=15_000_000,
        )
        self.words = words
        self.then = then
        self.hang = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        for word in self.words:
            yield word
        if self.then is not None:
            raise self.then
        await self.hang.wait()  # never set: only cancellation ends it
        yield await self.request(request)  # pragma: no cover - never reached


def expected_micros(prompt: list[Message], text: str) -> tuple[int, int, int]:
    input_tokens = estimate_tokens(prompt)
    output_tokens = estimate_tokens((Message.assistant(text),)) - 4
    cost = Decimal(input_tokens * 3 + output_tokens * 15)  # USD, at $3 / $15 a token
    return input_tokens, output_tokens, to_micros(cost)


async def run_and_cut(orchestrator: Orchestrator, deltas_before_cut: int) -> list[RunEvent]:
    events: list[RunEvent] = []
    enough = asyncio.Event()

    def on_event(event: RunEvent) -> None:
        events.append(event)
        if sum(isinstance(e, TextDelta) for e in events) >= deltas_before_cut:
            enough.set()

    task = asyncio.create_task(orchestrator.execute("hi", context=ACME, on_event=on_event))
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events


async def test_a_cancelled_stream_is_charged_to_the_budget_and_the_ledger() -> None:
    model = CutOffModel(["Tides ", "rise ", "twice"])
    ledger = MemoryCostLedger()
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1_000_000)), clock=FakeClock())
    orchestrator = Orchestrator(
        Agent("assistant", model=model),
        middleware=[budget, CostMiddleware(ledger, clock=FakeClock())],
    )

    await run_and_cut(orchestrator, deltas_before_cut=3)

    input_tokens, output_tokens, micros = expected_micros([Message.user("hi")], "Tides rise twice")
    [entry] = await ledger.entries(tenant_id="acme", period=PERIOD)
    assert (entry.input_tokens, entry.output_tokens) == (input_tokens, output_tokens)
    assert entry.cost_micros == micros
    assert entry.model == "cut-off"
    key = budget.tenant_key("acme")
    assert await budget.store.spent(key) == micros
    assert await budget.store.held(key) == 0  # settled, not left reserved


async def test_a_stream_that_fails_midway_is_charged_and_the_error_reaches_the_caller() -> None:
    model = CutOffModel(["Partial ", "answer"], then=ConnectionResetError("peer went away"))
    ledger = MemoryCostLedger()
    orchestrator = Orchestrator(
        Agent("assistant", model=model), middleware=[CostMiddleware(ledger, clock=FakeClock())]
    )
    with pytest.raises(ConnectionResetError, match="peer went away"):
        await orchestrator.execute("hi", context=ACME, on_event=lambda event: None)
    [entry] = await ledger.entries(tenant_id="acme", period=PERIOD)
    assert entry.cost_micros == expected_micros([Message.user("hi")], "Partial answer")[2]


async def test_a_stream_cut_before_its_first_token_is_not_charged() -> None:
    model = CutOffModel([], then=ConnectionResetError("refused"))
    ledger = MemoryCostLedger()
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1_000_000)), clock=FakeClock())
    orchestrator = Orchestrator(
        Agent("assistant", model=model),
        middleware=[budget, CostMiddleware(ledger, clock=FakeClock())],
    )
    with pytest.raises(ConnectionResetError):
        await orchestrator.execute("hi", context=ACME, on_event=lambda event: None)
    assert await ledger.entries(tenant_id="acme", period=PERIOD) == []
    key = budget.tenant_key("acme")
    assert (await budget.store.spent(key), await budget.store.held(key)) == (0, 0)
