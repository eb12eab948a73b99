"""The budget guard's reserve -> call -> settle cycle, for model and tool calls.

Refusals, fallback, approval, alerts and periods are in `test_budget_exceeded.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from onionskin import (
    Agent,
    BudgetExceededError,
    ConfigError,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    StoreError,
    TenantContext,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.runtime.models.scripted import Script, ScriptedModel
from onionskin.stores.budget import BudgetStore, MemoryBudgetStore
from onionskin.testing import FakeClock, tool_call

CENT_PER_TOKEN = 10_000  # USD per million output tokens: $0.01 a token, easy sums
ACME = TenantContext(tenant_id="acme")


def priced(script: Script, **options: Any) -> ScriptedModel:
    """A model whose output costs $0.01 a token and whose input is free."""
    return ScriptedModel(script, output_price_per_mtok=CENT_PER_TOKEN, **options)


def orchestrator(
    budget: BudgetMiddleware, script: Script, *, max_tokens: int | None = 10, **agent: Any
) -> Orchestrator:
    settings = {} if max_tokens is None else {"max_tokens": max_tokens}
    model = priced(script)
    return Orchestrator(
        Agent("assistant", model=model, settings=settings, **agent), middleware=[budget]
    )


FIVE_TOKENS = "x" * 20  # the scripted model bills len // 4 output tokens: $0.05


class SearchTool:
    """A stand-in for the `tool` a pipeline puts on a call of a plain function."""

    name = "search"

    def __init__(self) -> None:
        self.calls = 0

    def function(self, query: str) -> str:
        return f"results for {query}"

    async def invoke(self, call: ToolCall) -> ToolResult:
        self.calls += 1
        return ToolResult(tool_name=self.name, value=self.function(**call.kwargs))


def search_call(session_id: str | None = "s1") -> ToolCall:
    return ToolCall(
        tool_name="search", kwargs={"query": "q"}, session_id=session_id, tool=SearchTool()
    )


async def run_tool(call: ToolCall) -> ToolResult:
    assert call.tool is not None
    return await call.tool.invoke(call)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BudgetStore]:
    """Each store the budget runs on: the release paths must hold on both."""
    if request.param == "memory":
        yield MemoryBudgetStore(clock=FakeClock())
        return
    from onionskin.stores.redis_budget import RedisBudgetStore

    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    redis_store = RedisBudgetStore.from_url(url, prefix=prefix)
    yield redis_store
    client = redis_store.scripts.client
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await redis_store.aclose()


# --- model calls ------------------------------------------------------------------------------


async def test_a_model_call_is_settled_to_its_actual_cost() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_run=Decimal(1), per_tenant=Decimal(10)))

    result = await orchestrator(budget, [FIVE_TOKENS]).execute("hi", context=ACME, run_id="run-1")

    run_key = budget.run_key("run-1", tenant_id="acme")
    assert result.cost_usd == Decimal("0.05")
    assert await budget.spent(run_key) == result.cost_usd
    assert await budget.spent(budget.tenant_key("acme")) == result.cost_usd
    assert await budget.store.held(run_key) == 0
    assert list((await budget.store.ledger(run_key)).values()) == [50_000]


@pytest.mark.parametrize(("max_tokens", "estimate"), [(10, 100_000), (None, 200_000)])
async def test_the_estimate_is_held_during_the_call_and_bounded_by_max_tokens(
    max_tokens: int | None, estimate: int
) -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1), default_max_tokens=20))
    held: list[int] = []

    async def script(request: ModelRequest) -> str:
        held.append(await budget.store.held(budget.tenant_key("acme")))
        return FIVE_TOKENS

    await orchestrator(budget, script, max_tokens=max_tokens).execute("hi", context=ACME)

    assert held == [estimate]
    assert await budget.spent(budget.tenant_key("acme")) == Decimal("0.05")


async def test_spend_accumulates_until_the_next_estimate_does_not_fit() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal("0.25")))
    runner = orchestrator(budget, lambda request: FIVE_TOKENS)

    for _ in range(4):  # 0.05 spent each; the 0.10 estimate still fits under 0.25
        await runner.execute("hi", context=ACME)
    with pytest.raises(BudgetExceededError) as refused:
        await runner.execute("hi", context=ACME)

    error = refused.value
    assert (error.scope, error.tenant_id, error.key) == (
        "tenant",
        "acme",
        budget.tenant_key("acme"),
    )
    assert (error.limit, error.spent, error.requested) == (
        Decimal("0.25"),
        Decimal("0.20"),
        Decimal("0.10"),
    )


async def test_each_tenant_has_its_own_budget() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal("0.10")))
    runner = orchestrator(budget, lambda request: FIVE_TOKENS)

    await runner.execute("hi", context=ACME)
    with pytest.raises(BudgetExceededError):
        await runner.execute("hi", context=ACME)
    await runner.execute("hi", context=TenantContext(tenant_id="globex"))
    await runner.execute("hi")  # no tenant: the shared "-" budget

    assert await budget.spent(budget.tenant_key("globex")) == Decimal("0.05")
    assert await budget.spent(budget.tenant_key(None)) == Decimal("0.05")


async def test_a_session_budget_spans_the_runs_that_share_its_id() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_session=Decimal("0.15")))
    runner = orchestrator(budget, lambda request: FIVE_TOKENS)
    session = {"session_id": "chat-7"}

    await runner.execute("hi", context=ACME, metadata=session)
    await runner.execute("hi", context=ACME, metadata=session)
    with pytest.raises(BudgetExceededError) as refused:
        await runner.execute("hi", context=ACME, metadata=session)
    await runner.execute("hi", context=ACME, metadata={"session_id": "chat-8"})

    assert refused.value.scope == "session"
    assert await budget.spent(budget.session_key("chat-7", tenant_id="acme")) == Decimal("0.10")


async def test_a_bad_max_tokens_setting_is_refused_and_nothing_is_held() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1)))
    calls: list[ModelRequest] = []

    def script(request: ModelRequest) -> str:
        calls.append(request)
        return "never"

    runner = Orchestrator(
        Agent("assistant", model=priced(script), settings={"max_tokens": "lots"}),
        middleware=[budget],
    )
    with pytest.raises(ConfigError, match="max_tokens"):
        await runner.execute("hi", context=ACME)

    assert calls == []
    assert await budget.store.held(budget.tenant_key("acme")) == 0


# --- tool calls -------------------------------------------------------------------------------


async def test_a_tool_call_reserves_and_settles_its_declared_cost() -> None:
    budget = BudgetMiddleware(
        BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.30")})
    )
    results = [await budget.wrap_tool_call(search_call(), run_tool) for _ in range(3)]
    with pytest.raises(BudgetExceededError) as refused:
        await budget.wrap_tool_call(search_call(), run_tool)

    assert [result.value for result in results] == ["results for q"] * 3
    assert refused.value.scope == "session"
    assert await budget.spent(budget.session_key("s1")) == Decimal("0.90")


async def test_a_tool_without_a_declared_cost_never_reaches_the_store() -> None:
    class UnusableStore(MemoryBudgetStore):
        async def reserve(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("a free tool must not be reserved")

    budget = BudgetMiddleware(
        BudgetConfig(per_session=Decimal(1), tool_costs={"other": Decimal(1)}),
        store=UnusableStore(),
    )

    result = await budget.wrap_tool_call(search_call(), run_tool)

    assert result.value == "results for q"


async def test_a_tool_call_that_could_not_run_is_released_not_charged() -> None:
    budget = BudgetMiddleware(
        BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.30")})
    )

    async def refused_arguments(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, error="invalid arguments for tool 'search'")

    result = await budget.wrap_tool_call(search_call(), refused_arguments)

    key = budget.session_key("s1")
    assert result.status == "error"
    assert (await budget.store.spent(key), await budget.store.held(key)) == (0, 0)


async def test_tool_calls_in_a_run_count_against_the_run_not_a_session() -> None:
    budget = BudgetMiddleware(
        BudgetConfig(
            per_run=Decimal(1), per_session=Decimal(1), tool_costs={"lookup": Decimal("0.25")}
        )
    )

    def lookup(city: str) -> str:
        """Look a city up."""
        return "sunny"

    def script(request: ModelRequest) -> Any:
        return "done" if request.messages[-1].role == "tool" else tool_call("lookup", city="Oslo")

    runner = orchestrator(budget, script, tools=[lookup], max_tokens=1)
    result = await runner.execute("weather?", context=ACME, run_id="run-9")

    assert result.output == "done"
    models_cost = result.cost_usd  # two model calls
    spent = await budget.spent(budget.run_key("run-9", tenant_id="acme"))
    assert spent == models_cost + Decimal("0.25")
    assert await budget.spent(budget.session_key("run-9", tenant_id="acme")) == 0


async def test_micro_dollar_sums_are_exact_over_a_thousand_calls() -> None:
    budget = BudgetMiddleware(
        BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.000123")})
    )

    for _ in range(1_000):
        await budget.wrap_tool_call(search_call(), run_tool)

    assert await budget.spent(budget.session_key("s1")) == Decimal("0.123")


# --- every exit path releases the reservation ------------------------------------------------


def tool_budget(store: BudgetStore) -> BudgetMiddleware:
    config = BudgetConfig(per_session=Decimal(1), tool_costs={"search": Decimal("0.40")})
    return BudgetMiddleware(config, store=store)


async def assert_nothing_held_or_spent(budget: BudgetMiddleware) -> None:
    key = budget.session_key("s1")
    assert (await budget.store.held(key), await budget.store.spent(key)) == (0, 0)


async def test_a_failing_call_releases_and_its_error_passes_unchanged(store: BudgetStore) -> None:
    budget = tool_budget(store)
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    with pytest.raises(ConnectionError) as raised:
        await budget.wrap_tool_call(search_call(), failing)

    assert raised.value is error
    await assert_nothing_held_or_spent(budget)


async def test_a_timed_out_call_releases(store: BudgetStore) -> None:
    budget = tool_budget(store)
    loop = asyncio.get_running_loop()
    deadline = asyncio.timeout(None)

    async def hanging(call: ToolCall) -> ToolResult:
        deadline.reschedule(loop.time())  # time is up as soon as the call runs
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(TimeoutError):
        async with deadline:
            await budget.wrap_tool_call(search_call(), hanging)

    await assert_nothing_held_or_spent(budget)


async def test_a_cancelled_call_releases(store: BudgetStore) -> None:
    budget = tool_budget(store)
    entered = asyncio.Event()

    async def hanging(call: ToolCall) -> ToolResult:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(budget.wrap_tool_call(search_call(), hanging))
    await entered.wait()
    held = await budget.store.held(budget.session_key("s1"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert held == 400_000
    await assert_nothing_held_or_spent(budget)


async def test_a_call_cancelled_while_reserving_holds_nothing(store: BudgetStore) -> None:
    budget = tool_budget(store)
    ran = False

    async def tool(call: ToolCall) -> ToolResult:
        nonlocal ran
        ran = True
        await asyncio.sleep(0)  # a tool that waits: the memory store's calls first wait here
        return await run_tool(call)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):  # fires at the first wait
            await budget.wrap_tool_call(search_call(), tool)

    # Redis: the first wait is the reservation, so the tool never ran. The memory store
    # reserves without waiting (a yield there would cost every call a loop iteration), so
    # the tool started and was cancelled at its own wait. Either way nothing is held.
    assert ran is isinstance(store, MemoryBudgetStore)
    await assert_nothing_held_or_spent(budget)


async def test_a_failing_model_call_in_a_run_releases(store: BudgetStore) -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(1)), store=store)
    error = ModelHTTPError("overloaded", status_code=529)

    async def script(request: ModelRequest) -> str:
        raise error

    with pytest.raises(ModelHTTPError) as raised:
        await orchestrator(budget, script).execute("hi", context=ACME)

    key = budget.tenant_key("acme")
    assert raised.value is error
    assert (await budget.store.held(key), await budget.store.spent(key)) == (0, 0)


async def test_a_model_call_outside_a_run_counts_only_per_call_limits() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_call=Decimal("0.05"), per_run=Decimal(1)))
    model = priced([FIVE_TOKENS, FIVE_TOKENS])
    seen: list[ModelRequest] = []

    async def call_model(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return await request.model.request(request)

    request = ModelRequest(model=model, messages=[], settings={"max_tokens": 5})
    response = await budget.wrap_model_call(request, call_model)
    too_long = ModelRequest(model=model, messages=[], settings={"max_tokens": 6})
    with pytest.raises(BudgetExceededError) as refused:
        await budget.wrap_model_call(too_long, call_model)

    assert response.message.text == FIVE_TOKENS
    assert (refused.value.scope, refused.value.limit) == ("call", Decimal("0.05"))
    assert seen == [request]


# --- configuration ----------------------------------------------------------------------------


def noop(*args: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"per_call": 0.5}, "per_call"),
        ({"per_run": Decimal(-1)}, "per_run"),
        ({"per_session": Decimal("NaN")}, "per_session"),
        ({"per_tenant": True}, "per_tenant"),
        ({"per_tenant": "10"}, "per_tenant"),
        ({"tenant_period": "week"}, "tenant_period"),
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"tool_costs": {"search": 0.1}}, "tool_costs"),
        ({"tool_costs": ["search"]}, "tool_costs"),
        ({"alert_thresholds": (0.8, 1.5)}, "alert_thresholds"),
        ({"alert_thresholds": 0.8}, "alert_thresholds"),
        ({"on_alert": "log"}, "on_alert"),
        ({"on_exceeded": "ignore"}, "on_exceeded"),
        ({"on_exceeded": "fallback"}, "fallback_model"),
        ({"on_exceeded": "fallback", "fallback_model": "gpt-4o-mini"}, "fallback_model"),
        ({"on_exceeded": "approve"}, "approve"),
        ({"on_exceeded": "approve", "approve": True}, "approve"),
        ({"reservation_ttl": 0}, "reservation_ttl"),
        ({"fail_open": "yes"}, "fail_open"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"BudgetConfig.{field}"):
        BudgetConfig(**options)


def test_the_middleware_checks_its_config_and_store() -> None:
    with pytest.raises(ConfigError, match="BudgetConfig"):
        BudgetMiddleware({"per_run": Decimal(1)})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="BudgetStore"):
        BudgetMiddleware(store=object())  # type: ignore[arg-type]


def test_tool_costs_are_copied_so_the_config_cannot_change_later() -> None:
    costs = {"search": Decimal("0.10")}
    config = BudgetConfig(tool_costs=costs)
    costs["search"] = Decimal(100)

    assert config.tool_costs["search"] == Decimal("0.10")
    with pytest.raises(TypeError):
        config.tool_costs["search"] = Decimal(1)  # type: ignore[index]


# --- the store failing after admission, and budgets with nothing to hold ---------------------


async def test_a_store_failing_after_the_call_keeps_the_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FlakyStore(MemoryBudgetStore):
        async def settle(self, reservation_id: str, actual_micros: int) -> None:
            raise StoreError("redis: ConnectionError: gone")

        async def release(self, reservation_id: str) -> bool:
            raise StoreError("redis: ConnectionError: gone")

    budget = tool_budget(FlakyStore(clock=FakeClock()))

    async def refused_arguments(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, error="invalid arguments")

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        result = await budget.wrap_tool_call(search_call(), run_tool)
        refused = await budget.wrap_tool_call(search_call(), refused_arguments)

    assert (result.value, refused.status) == ("results for q", "error")
    assert caplog.text.count("not ended (redis: ConnectionError: gone); lapses in 600 s") == 2


async def test_an_alert_the_store_cannot_claim_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class NoClaims(MemoryBudgetStore):
        async def claim_alert(self, key: str, threshold: str) -> bool:
            raise StoreError("redis: TimeoutError")

    alerts: list[Any] = []
    config = BudgetConfig(
        per_session=Decimal("0.40"), tool_costs={"search": Decimal("0.40")}, on_alert=alerts.append
    )
    budget = BudgetMiddleware(config, store=NoClaims())

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        result = await budget.wrap_tool_call(search_call(), run_tool)

    assert result.status == "success"
    assert alerts == []
    assert "alert 0.8 of -:session:s1 not claimed" in caplog.text


async def test_a_budget_without_limits_lets_calls_through_untouched() -> None:
    class UnusableStore(MemoryBudgetStore):
        async def reserve(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("nothing to reserve")

    budget = BudgetMiddleware(store=UnusableStore())
    result = await orchestrator(budget, [FIVE_TOKENS]).execute("hi", context=ACME)

    assert result.output == FIVE_TOKENS


async def test_a_per_call_limit_alone_needs_no_store() -> None:
    class UnusableStore(MemoryBudgetStore):
        async def reserve(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("a per-call limit holds nothing")

    config = BudgetConfig(per_call=Decimal("0.50"), tool_costs={"search": Decimal("0.40")})
    budget = BudgetMiddleware(config, store=UnusableStore())

    result = await budget.wrap_tool_call(search_call(), run_tool)

    assert result.value == "results for q"


async def test_fail_open_admits_without_a_reservation(caplog: pytest.LogCaptureFixture) -> None:
    class DownStore(MemoryBudgetStore):
        async def reserve(self, *args: Any, **kwargs: Any) -> None:
            raise StoreError("redis: ConnectionError: refused")

    config = BudgetConfig(
        per_session=Decimal("0.10"), tool_costs={"search": Decimal("0.40")}, fail_open=True
    )
    budget = BudgetMiddleware(config, store=DownStore())

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        results = [await budget.wrap_tool_call(search_call(), run_tool) for _ in range(2)]

    assert [result.status for result in results] == ["success", "success"]
    assert caplog.text.count("failing open") == 1
    assert await budget.store.ledger(budget.session_key("s1")) == {}


async def test_a_zero_budget_admits_only_free_calls() -> None:
    budget = BudgetMiddleware(BudgetConfig(per_tenant=Decimal(0)))
    free = Orchestrator(Agent("free", model=ScriptedModel(["gratis"])), middleware=[budget])

    result = await free.execute("hi", context=ACME)
    with pytest.raises(BudgetExceededError):
        await orchestrator(budget, [FIVE_TOKENS]).execute("hi", context=ACME)

    assert result.output == "gratis"


async def test_a_call_that_outlives_its_reservation_is_logged_not_charged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    budget = tool_budget(MemoryBudgetStore(clock=clock))

    async def very_slow(call: ToolCall) -> ToolResult:
        clock.advance(600 + 3600)  # the reservation's ttl, then its grace, ran out
        return await run_tool(call)

    with caplog.at_level(logging.WARNING, logger="onionskin.guards"):
        result = await budget.wrap_tool_call(search_call(), very_slow)

    assert result.status == "success"
    assert "had lapsed; its $0.4 went uncounted" in caplog.text
    await assert_nothing_held_or_spent(budget)
