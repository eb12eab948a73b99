"""`CostMiddleware`: every model call in the ledger, over-budget tenants stopped or queued."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from onionskin import (
    Agent,
    BudgetExceededError,
    ConfigError,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Pipeline,
    StoreError,
    TenantContext,
    Usage,
)
from onionskin.core.context import current_context
from onionskin.core.errors import ApprovalRequiredError
from onionskin.middleware.cost import CostMiddleware
from onionskin.pricing import to_micros
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.stores.approvals import MemoryApprovalQueue
from onionskin.stores.ledger import CostEntry, MemoryCostLedger, RecordOutcome
from onionskin.testing import FakeClock, tool_call
from tests.conftest import OrchestratorFactory, recorder

ACME = TenantContext(tenant_id="acme")
GLOBEX = TenantContext(tenant_id="globex")
NOV_5 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
IN_PRICE, OUT_PRICE = 3, 15  # USD per million tokens
MILLION = Decimal(1_000_000)


def reply(content: str | None, input_tokens: int, output_tokens: int) -> ModelResponse:
    """A scripted answer (text, or a call of `lookup` when None) with known usage."""
    if content is None:
        message = Message("assistant", [tool_call("lookup", topic="tides")])
    else:
        message = Message.assistant(content)
    return ModelResponse(
        message=message, usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    )


def priced(name: str, answers: list[ScriptItem], seen: list[ModelRequest]) -> ScriptedModel:
    return ScriptedModel(
        recorder(answers, seen),
        name=name,
        input_price_per_mtok=IN_PRICE,
        output_price_per_mtok=OUT_PRICE,
    )


def micros(input_tokens: int, output_tokens: int) -> int:
    return to_micros((input_tokens * IN_PRICE + output_tokens * OUT_PRICE) / MILLION)


def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def spend(ledger: MemoryCostLedger, tenant: str, usd: int) -> Awaitable[Any]:
    """Spend `usd` of `tenant`'s November budget before the test's runs."""
    return ledger.record(
        CostEntry(
            call_id=f"earlier-{tenant}",
            tenant_id=tenant,
            run_id=None,
            agent=None,
            model="m",
            input_tokens=0,
            output_tokens=0,
            cost_micros=usd * 1_000_000,
            recorded_at=NOV_5,
        )
    )


def middleware(ledger: MemoryCostLedger, **options: Any) -> CostMiddleware:
    return CostMiddleware(
        ledger, clock=options.pop("clock", FakeClock(NOV_5.timestamp())), **options
    )


async def test_every_model_call_is_recorded_with_its_agent_model_tokens_and_cost() -> None:
    ledger = MemoryCostLedger()
    seen: list[ModelRequest] = []
    researcher = Agent(
        "researcher",
        model=priced("big-model", [reply(None, 120, 30), reply("tides rise", 200, 50)], seen),
        tools=[lookup],
    )
    writer = Agent("writer", model=priced("small-model", [reply("a poem", 80, 400)], seen))
    runner = Orchestrator(Pipeline([researcher, writer]), middleware=[middleware(ledger)])

    result = await runner.execute("tides?", context=ACME, run_id="run-1")

    entries = sorted(
        await ledger.entries(tenant_id="acme", period="2026-11"), key=lambda e: e.call_id
    )
    assert len(seen) == 3
    assert [(e.agent, e.model, e.input_tokens, e.output_tokens) for e in entries] == [
        ("researcher", "big-model", 120, 30),
        ("researcher", "big-model", 200, 50),
        ("writer", "small-model", 80, 400),
    ]
    assert [e.cost_micros for e in entries] == [micros(120, 30), micros(200, 50), micros(80, 400)]
    assert {(e.tenant_id, e.run_id, e.period) for e in entries} == {("acme", "run-1", "2026-11")}
    assert len({e.call_id for e in entries}) == 3
    totals = await ledger.totals(tenant_id="acme", period="2026-11")
    assert totals.total_micros == to_micros(result.cost_usd)


async def test_calls_of_a_run_that_fails_later_are_still_recorded() -> None:
    ledger = MemoryCostLedger()
    model = ScriptedModel(  # no answer left for the second call
        [reply(None, 10, 10)],
        name="m",
        input_price_per_mtok=IN_PRICE,
        output_price_per_mtok=OUT_PRICE,
    )
    runner = Orchestrator(
        Agent("solo", model=model, tools=[lookup]), middleware=[middleware(ledger)]
    )

    with pytest.raises(ModelError, match="no answer left"):
        await runner.execute("go", context=ACME)

    entries = await ledger.entries(tenant_id="acme", period="2026-11")
    assert [(e.agent, e.input_tokens, e.cost_micros) for e in entries] == [
        ("solo", 10, micros(10, 10))
    ]


async def test_runs_without_a_tenant_are_recorded_in_their_own_partition(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    ledger = MemoryCostLedger()
    runner = orchestrator_factory(["hello"], middleware=[middleware(ledger)])

    await runner.execute("hi")

    assert (await ledger.totals(tenant_id=None, period="2026-11")).calls == 1
    assert (await ledger.totals(tenant_id="acme", period="2026-11")).calls == 0


async def test_an_over_budget_tenant_is_refused_before_the_model_is_called(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    ledger = MemoryCostLedger()
    await spend(ledger, "acme", 10)
    seen: list[ModelRequest] = []
    runner = orchestrator_factory(
        recorder(["fine"], seen), middleware=[middleware(ledger, budget_limit_usd=10)]
    )

    with pytest.raises(BudgetExceededError, match="'acme'") as caught:
        await runner.execute("hi", context=ACME)

    assert not isinstance(caught.value, ApprovalRequiredError)
    assert (caught.value.limit, caught.value.spent) == (Decimal(10), Decimal(10))
    assert seen == []
    assert (await ledger.totals(tenant_id="acme", period="2026-11")).calls == 1
    assert (await runner.execute("hi", context=GLOBEX)).output == "fine"  # others unaffected


async def test_budget_for_sets_each_tenants_budget(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    ledger = MemoryCostLedger()
    await spend(ledger, "acme", 5)
    await spend(ledger, "globex", 5)
    budgets = {"acme": Decimal(5), "globex": None}

    async def budget_for(tenant: str | None) -> Decimal | None:
        return budgets.get(tenant or "")

    cost = middleware(ledger, budget_for=budget_for, budget_limit_usd=100)
    runner = orchestrator_factory(["one", "two"], middleware=[cost])

    with pytest.raises(BudgetExceededError):
        await runner.execute("hi", context=ACME)
    assert (await runner.execute("hi", context=GLOBEX)).output == "one"  # None: the default
    budgets["globex"] = Decimal(5)
    with pytest.raises(BudgetExceededError):
        await runner.execute("hi", context=GLOBEX)


async def test_a_bad_budget_from_budget_for_is_refused_before_the_model(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    cost = middleware(MemoryCostLedger(), budget_for=lambda tenant: "lots")
    runner = orchestrator_factory(recorder(["never"], seen), middleware=[cost])

    with pytest.raises(ConfigError, match=r"budget_for\('acme'\)"):
        await runner.execute("hi", context=ACME)
    assert seen == []


class Checkpointing:
    """A stand-in for a checkpointing layer: it names the run's latest checkpoint."""

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        current_context().guard_state["checkpoint_id"] = "cp-42"
        return await next(request)


async def test_an_over_budget_call_is_routed_to_the_approval_queue(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    ledger, approvals = MemoryCostLedger(), MemoryApprovalQueue()
    await spend(ledger, "acme", 10)
    seen: list[ModelRequest] = []
    cost = middleware(ledger, budget_limit_usd=10, approvals=approvals)
    runner = orchestrator_factory(
        recorder(["approved answer"], seen), middleware=[Checkpointing(), cost], name="writer"
    )

    with pytest.raises(ApprovalRequiredError) as caught:
        await runner.execute("hi", context=ACME, run_id="run-7")
    with pytest.raises(ApprovalRequiredError) as again:  # still waiting: no second request
        await runner.execute("hi", context=ACME, run_id="run-7")

    [request] = await approvals.list(tenant_id="acme")
    assert caught.value.approval_id == again.value.approval_id == request.approval_id
    assert (request.run_id, request.checkpoint_id, request.status) == ("run-7", "cp-42", "pending")
    assert "'writer'" in request.reason
    assert "$10" in request.reason
    assert seen == []
    assert await approvals.list(tenant_id="globex") == []

    await approvals.approve(request.approval_id, tenant_id="acme", operator="ops")
    result = await runner.execute("hi", context=ACME, run_id="run-7")

    assert result.output == "approved answer"
    assert (await ledger.totals(tenant_id="acme", period="2026-11")).calls == 2  # recorded too
    with pytest.raises(ApprovalRequiredError):  # the approval covers that run only
        await runner.execute("hi", context=ACME, run_id="run-8")


async def test_a_denied_request_stops_the_run(orchestrator_factory: OrchestratorFactory) -> None:
    ledger, approvals = MemoryCostLedger(), MemoryApprovalQueue()
    await spend(ledger, "acme", 1)
    cost = middleware(ledger, budget_limit_usd=1, approvals=approvals)
    runner = orchestrator_factory(["never"], middleware=[cost])
    with pytest.raises(ApprovalRequiredError) as caught:
        await runner.execute("hi", context=ACME, run_id="run-1")
    await approvals.deny(caught.value.approval_id, tenant_id="acme", operator="ops")

    with pytest.raises(BudgetExceededError) as denied:
        await runner.execute("hi", context=ACME, run_id="run-1")

    assert not isinstance(denied.value, ApprovalRequiredError)
    assert len(await approvals.list(tenant_id="acme")) == 1


async def test_alerts_fire_once_per_threshold_and_rearm_next_month() -> None:
    clock = FakeClock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC).timestamp())
    ledger = MemoryCostLedger()
    fired: list[tuple[str | None, int, float]] = []
    cost = middleware(
        ledger,
        budget_limit_usd=Decimal("0.01"),
        alert_thresholds=(50, 100),
        on_alert=lambda *alert: fired.append(alert),
        clock=clock,
    )
    seen: list[ModelRequest] = []
    answers: list[ScriptItem] = [reply("x", 0, 400) for _ in range(4)]  # $0.006 each
    runner = Orchestrator(Agent("a", model=priced("m", answers, seen)), middleware=[cost])

    await runner.execute("hi", context=ACME)  # 60 %
    await runner.execute("hi", context=ACME)  # 120 %
    with pytest.raises(BudgetExceededError):
        await runner.execute("hi", context=ACME)
    clock.advance(3600)  # December: a fresh budget
    await runner.execute("hi", context=ACME)

    assert [(tenant, pct) for tenant, pct, _ in fired] == [
        ("acme", 50),
        ("acme", 100),
        ("acme", 50),
    ]
    assert [share for _, _, share in fired] == [60.0, 120.0, 60.0]
    assert len(seen) == 3


def test_approval_required_is_a_budget_error_that_survives_pickling() -> None:
    error = ApprovalRequiredError(
        "acme", approval_id="ap-1", limit=Decimal(10), spent=Decimal(12), key="acme:cost:2026-11"
    )

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, ApprovalRequiredError)
    assert isinstance(copy, BudgetExceededError)
    assert (copy.approval_id, copy.tenant_id, copy.limit, copy.spent) == (
        "ap-1",
        "acme",
        Decimal(10),
        Decimal(12),
    )
    assert str(copy) == str(error)
    assert "approval request 'ap-1'" in str(error)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ledger": object()}, "needs a CostLedger"),
        ({"budget_limit_usd": -1}, "budget_limit_usd"),
        ({"budget_limit_usd": float("nan")}, "budget_limit_usd"),
        ({"approvals": object()}, "ApprovalQueue"),
        ({"budget_for": 5}, "budget_for must be callable"),
        ({"on_alert": "pager"}, "on_alert must be callable"),
        ({"alert_thresholds": (80.5,)}, "alert_thresholds"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"ledger": MemoryCostLedger(), **options}
    ledger = arguments.pop("ledger")
    with pytest.raises(ConfigError, match=message):
        CostMiddleware(ledger, **arguments)


class HeldLedger(MemoryCostLedger):
    """A ledger whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.go_on = asyncio.Event()

    async def record(self, entry: CostEntry) -> RecordOutcome:
        self.writing.set()
        await self.go_on.wait()
        return await super().record(entry)


async def test_a_run_cancelled_while_its_call_is_recorded_is_still_billed(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    ledger = HeldLedger()
    runner = orchestrator_factory(["answer"], middleware=[middleware(ledger)])
    run = asyncio.create_task(runner.execute("hi", context=ACME))
    await ledger.writing.wait()

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    ledger.go_on.set()
    for _ in range(5):  # let the shielded write finish
        await asyncio.sleep(0)

    assert (await ledger.totals(tenant_id="acme", period="2026-11")).calls == 1


class BrokenLedger(MemoryCostLedger):
    async def record(self, entry: CostEntry) -> RecordOutcome:
        raise StoreError("the ledger's database is down")


async def test_a_ledger_that_cannot_be_written_fails_the_call_loudly(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    runner = orchestrator_factory(["answer"], middleware=[middleware(BrokenLedger())])

    with pytest.raises(StoreError, match="down"):
        await runner.execute("hi", context=ACME)
