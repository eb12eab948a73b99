"""A tenant config's `limits`: call limits per run, rates per bucket, a monthly budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from onionskin import (
    Agent,
    BudgetExceededError,
    CallLimitExceededError,
    ConfigError,
    ModelRequest,
    Orchestrator,
    RateLimitExceededError,
    TenantContext,
)
from onionskin.middleware.cost import CostMiddleware
from onionskin.middleware.rate_limit import RateLimit, RateLimiterMiddleware
from onionskin.middleware.tenant_config import TenantConfigMiddleware, tenant_limits
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.stores.ledger import MemoryCostLedger
from onionskin.tenancy.config import StaticConfigProvider
from onionskin.testing import FakeClock, ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory

ACME = TenantContext(tenant_id="acme")
GLOBEX = TenantContext(tenant_id="globex")


def lookups(count: int) -> Any:
    """A script that calls `lookup` `count` times, one call per model turn, then answers."""

    def script(request: ModelRequest) -> ScriptItem:
        done = sum(1 for message in request.messages if message.role == "tool")
        return tool_call("lookup", q=str(done)) if done < count else "done"

    return script


def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


def configured(tenants: dict[str, Any], *extra: object) -> list[object]:
    return [TenantConfigMiddleware([StaticConfigProvider(tenants=tenants)]), *extra]


async def test_max_model_calls_stops_one_tenants_run_and_not_the_others(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    tenants = {"acme": {"limits": {"max_model_calls": 2}}}
    orchestrator = orchestrator_factory(lookups(3), middleware=configured(tenants), tools=[lookup])

    with pytest.raises(CallLimitExceededError) as refused:
        await orchestrator.execute("go", context=ACME)
    assert (refused.value.kind, refused.value.limit) == ("model", 2)
    assert (await orchestrator.execute("go", context=GLOBEX)).output == "done"


async def test_max_model_calls_counts_per_run(orchestrator_factory: OrchestratorFactory) -> None:
    tenants = {"acme": {"limits": {"max_model_calls": 3}}}
    orchestrator = orchestrator_factory(lookups(2), middleware=configured(tenants), tools=[lookup])
    for _ in range(3):  # three model calls each: the count starts again every run
        assert (await orchestrator.execute("go", context=ACME)).output == "done"


async def test_max_tool_calls_refuses_the_call_past_it() -> None:
    called: list[str] = []

    def lookup(q: str) -> str:
        """Look something up."""
        called.append(q)
        return q

    tenants = {"acme": {"limits": {"max_tool_calls": 2}}, "globex": {}}
    agent = Agent("assistant", model=ScriptedModel(lookups(3)), tools=[lookup])
    orchestrator = Orchestrator(agent, middleware=configured(tenants))

    with pytest.raises(CallLimitExceededError) as refused:
        await orchestrator.execute("go", context=ACME)
    assert (refused.value.kind, refused.value.limit) == ("tool", 2)
    assert called == ["0", "1"]  # the third call was refused before the tool ran
    assert (await orchestrator.execute("go", context=GLOBEX)).output == "done"
    assert called == ["0", "1", "0", "1", "2"]


async def test_rates_give_each_tenant_its_own_bucket_size(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1, per="tenant"), clock=clock)
    tenants = {"acme": {"limits": {"rates": {"all-calls": {"rate": 1, "burst": 3}}}}}
    orchestrator = orchestrator_factory(
        lambda request: "done", middleware=configured(tenants, limiter)
    )

    for _ in range(3):
        assert (await orchestrator.execute("go", context=ACME)).output == "done"
    with pytest.raises(RateLimitExceededError):
        await orchestrator.execute("go", context=ACME)
    assert (await orchestrator.execute("go", context=GLOBEX)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=GLOBEX)
    assert refused.value.key == "tenant:globex:all-calls"


async def test_a_changed_rate_applies_to_the_next_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    rates: dict[str, Any] = {"all-calls": {"rate": 1, "burst": 1}}

    class Live(StaticConfigProvider):
        """Reads the current `rates`, as a database-backed provider would."""

        def get_config(self, request: Any, /) -> dict[str, Any]:
            return {"limits": {"rates": rates}}

    clock = FakeClock()
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1, per="tenant"), clock=clock)
    orchestrator = orchestrator_factory(
        lambda request: "done", middleware=[TenantConfigMiddleware([Live()]), limiter]
    )
    assert (await orchestrator.execute("go", context=ACME)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=ACME)
    assert refused.value.retry_after == pytest.approx(1)

    rates["all-calls"] = {"rate": 4}  # a faster refill, the limit's burst of 1
    clock.advance(1)
    assert (await orchestrator.execute("go", context=ACME)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=ACME)
    assert refused.value.retry_after == pytest.approx(0.25)
    clock.advance(0.25)
    assert (await orchestrator.execute("go", context=ACME)).output == "done"


async def test_a_global_bucket_ignores_tenant_rates(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1, per="global"), clock=FakeClock())
    tenants = {"acme": {"limits": {"rates": {"all-calls": {"rate": 100, "burst": 100}}}}}
    orchestrator = orchestrator_factory(
        lambda request: "done", middleware=configured(tenants, limiter)
    )
    assert (await orchestrator.execute("go", context=ACME)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=ACME)  # one bucket for all: no tenant owns it
    assert refused.value.key == "global:all-calls"


async def test_a_token_bucket_takes_the_tenants_burst(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    limiter = RateLimiterMiddleware(
        RateLimit(rate=10, burst=100, per="tenant", unit="tokens"), clock=FakeClock()
    )
    tenants = {"acme": {"limits": {"rates": {"model-tokens": {"rate": 10, "burst": 10_000}}}}}
    orchestrator = orchestrator_factory(
        lambda request: "done",
        middleware=configured(tenants, limiter),
        settings={"max_tokens": 500},
    )
    # 500 output tokens reserved: more than the limit's burst of 100, within acme's 10,000.
    assert (await orchestrator.execute("go", context=ACME)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=GLOBEX)
    assert refused.value.retry_after == float("inf")


NOV_5 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def priced(request: ModelRequest) -> ScriptItem:
    return "done"


async def test_the_monthly_budget_comes_from_the_tenant_config() -> None:
    ledger = MemoryCostLedger()
    model = ScriptedModel(priced, input_price_per_mtok=1_000_000, output_price_per_mtok=0)
    cost = CostMiddleware(ledger, clock=FakeClock(NOV_5.timestamp()))
    tenants = {"acme": {"limits": {"monthly_budget_usd": "0.5"}}}
    orchestrator = Orchestrator(
        Agent("assistant", model=model), middleware=configured(tenants, cost)
    )

    # Each call costs about as many dollars as its prompt has tokens: far past 0.5 USD.
    await orchestrator.execute("go", context=ACME)
    with pytest.raises(BudgetExceededError) as refused:
        await orchestrator.execute("go", context=ACME)
    assert refused.value.tenant_id == "acme"
    assert refused.value.scope == "tenant"
    for _ in range(2):  # globex's config sets no budget, and the middleware none
        await orchestrator.execute("go", context=GLOBEX)


async def test_budget_for_wins_over_the_tenant_config() -> None:
    ledger = MemoryCostLedger()
    model = ScriptedModel(priced, input_price_per_mtok=1_000_000, output_price_per_mtok=0)
    cost = CostMiddleware(
        ledger, clock=FakeClock(NOV_5.timestamp()), budget_for=lambda tenant: 1_000_000
    )
    tenants = {"acme": {"limits": {"monthly_budget_usd": 0}}}
    orchestrator = Orchestrator(
        Agent("assistant", model=model), middleware=configured(tenants, cost)
    )
    for _ in range(2):
        assert (await orchestrator.execute("go", context=ACME)).output == "done"


BAD_LIMITS = [
    ([1, 2], "config limits must be a mapping"),
    ({"max_model_call": 3}, "unknown key.*'max_model_call'.*known: max_model_calls"),
    ({"max_model_calls": -1}, r"limits.max_model_calls must be a whole number >= 0"),
    ({"max_tool_calls": True}, r"limits.max_tool_calls must be a whole number"),
    ({"max_tool_calls": 2.5}, r"limits.max_tool_calls must be a whole number"),
    ({"monthly_budget_usd": "lots"}, r"limits.monthly_budget_usd must be USD >= 0"),
    ({"monthly_budget_usd": -1}, r"limits.monthly_budget_usd must be USD >= 0"),
    ({"monthly_budget_usd": "NaN"}, r"limits.monthly_budget_usd must be USD >= 0"),
    ({"rates": 5}, r"limits.rates must map bucket names to rates"),
    ({"rates": {"all-calls": 0}}, r"rates\['all-calls'\] must be a number > 0"),
    ({"rates": {"all-calls": "fast"}}, r"rates\['all-calls'\] must be a number > 0"),
    ({"rates": {"all-calls": float("inf")}}, r"rates\['all-calls'\] must be finite"),
    ({"rates": {"all-calls": {"burst": 3}}}, r"takes rate and optionally burst"),
    ({"rates": {"all-calls": {"rate": 1, "brust": 3}}}, r"takes rate and optionally burst"),
    ({"rates": {"all-calls": {"rate": 1, "burst": 0.5}}}, r"burst must be >= 1"),
    ({"rates": {3: {"rate": 1}}}, r"a bucket name must be a string"),
]


@pytest.mark.parametrize(("limits", "message"), BAD_LIMITS)
async def test_bad_limits_fail_the_run_before_any_call(limits: Any, message: str) -> None:
    calls: list[ModelRequest] = []

    def answer(request: ModelRequest) -> ScriptItem:
        calls.append(request)
        return "done"

    model = ScriptedModel(answer)
    orchestrator = Orchestrator(
        Agent("assistant", model=model), middleware=configured({"acme": {"limits": limits}})
    )
    with pytest.raises(ConfigError, match=message):
        await orchestrator.execute("go", context=ACME)
    assert calls == []
    assert (await orchestrator.execute("go", context=GLOBEX)).output == "done"


def test_no_limits_outside_a_configured_run() -> None:
    limits = tenant_limits(None)
    assert (limits.max_model_calls, limits.max_tool_calls, limits.monthly_budget_usd) == (
        None,
        None,
        None,
    )
    assert dict(limits.rates) == {}
