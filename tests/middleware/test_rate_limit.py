"""The rate limiter on model and tool calls, driven by a fake clock: no real waiting."""

from __future__ import annotations

import asyncio
import math
import pickle
from collections.abc import Awaitable, Callable, Sequence
from typing import Any  # Any: the bad-config tests pass deliberately ill-typed values

import pytest

from onionskin import (
    ConfigError,
    InvalidInputError,
    Message,
    ModelRequest,
    ModelResponse,
    RateLimitExceededError,
    TenantContext,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)
from onionskin.middleware.rate_limit import (
    _CACHED_CHARGES,
    RateLimit,
    RateLimitConfig,
    RateLimiterMiddleware,
)
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.stores.rate_limit import Admission, Charge, MemoryRateLimitStore
from onionskin.testing import FakeClock, ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory


class SpyStore:
    """A memory store that records what the limiter asked of it."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryRateLimitStore(clock)
        self.acquired: list[list[Charge]] = []
        self.adjusted: list[list[Charge]] = []

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        self.acquired.append(list(charges))
        return await self.inner.acquire(charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        self.adjusted.append(list(charges))
        await self.inner.adjust(charges)


def calling_lookup(request: ModelRequest) -> ScriptItem:
    if request.messages[-1].role == "tool":
        return "done"
    return tool_call("lookup", q="x")


async def lookup(q: str) -> str:
    """Look something up."""
    return "found"


def tool_call_of(name: str = "lookup") -> ToolCall:
    return ToolCall(tool_name=name, kwargs={"q": "x"}, session_id="s1")


async def answer(call: ToolCall) -> ToolResult:
    return ToolResult(tool_name=call.tool_name, value="ok")


def model_request(text: str = "hello there", **settings: object) -> ModelRequest:
    return ModelRequest(
        model=ScriptedModel(["unused"], name="gpt-test"),
        messages=[Message("user", [TextPart(text)])],
        settings=settings,
    )


def replying(
    input_tokens: int, output_tokens: int
) -> Callable[[ModelRequest], Awaitable[ModelResponse]]:
    async def next(request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            message=Message("assistant", [TextPart("hi")]),
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        )

    return next


async def test_tool_calls_beyond_the_burst_are_refused_inside_a_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    limiter = RateLimiterMiddleware(RateLimit(rate=0.5, burst=2, per="tool"), clock=clock)
    orchestrator = orchestrator_factory(calling_lookup, middleware=[limiter], tools=[lookup])
    tenant = TenantContext(tenant_id="acme")

    for _ in range(2):
        assert (await orchestrator.execute("go", context=tenant)).output == "done"
    with pytest.raises(RateLimitExceededError) as refused:
        await orchestrator.execute("go", context=tenant)
    assert refused.value.key == "tenant:acme:tool:lookup:tool-calls"
    assert refused.value.retry_after == pytest.approx(2)
    clock.advance(2)
    assert (await orchestrator.execute("go", context=tenant)).output == "done"


async def test_guards_a_plain_function_call_outside_a_run() -> None:
    """The MiddlewarePipeline level: no run context, so the tenant is `-`."""
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1, per="tool"), clock=FakeClock())
    calls: list[str] = []

    async def next(call: ToolCall) -> ToolResult:
        calls.append(call.tool_name)
        return ToolResult(tool_name=call.tool_name, value=len(calls))

    assert (await limiter.wrap_tool_call(tool_call_of(), next)).value == 1
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_tool_call(tool_call_of(), next)
    assert refused.value.key == "tenant:-:tool:lookup:tool-calls"
    assert calls == ["lookup"]
    assert (await limiter.wrap_tool_call(tool_call_of("other"), next)).value == 2


async def test_the_callee_error_passes_through_unchanged() -> None:
    limiter = RateLimiterMiddleware(RateLimit(rate=1), clock=FakeClock())
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    with pytest.raises(ConnectionError) as raised:
        await limiter.wrap_tool_call(tool_call_of(), failing)
    assert raised.value is error


async def test_waits_on_the_clock_up_to_max_wait_then_refuses_at_once() -> None:
    clock = FakeClock()
    config = RateLimitConfig(limits=(RateLimit(rate=1, burst=1),), max_wait=1.5)
    limiter = RateLimiterMiddleware(config, clock=clock)

    await limiter.wrap_tool_call(tool_call_of(), answer)
    await limiter.wrap_tool_call(tool_call_of(), answer)  # waits one second for its token
    assert clock.sleeps == [pytest.approx(1)]
    await limiter.wrap_tool_call(tool_call_of(), answer)
    assert clock.sleeps == [pytest.approx(1), pytest.approx(1)]
    limiter = RateLimiterMiddleware(
        RateLimitConfig(limits=(RateLimit(rate=0.5, burst=1),), max_wait=1.5), clock=clock
    )
    await limiter.wrap_tool_call(tool_call_of(), answer)
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_tool_call(tool_call_of(), answer)  # needs 2 s: no point waiting
    assert refused.value.retry_after == pytest.approx(2)
    assert len(clock.sleeps) == 2


async def test_tenants_users_and_the_global_bucket_are_keyed_apart(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limits = [
        RateLimit(rate=10, per="global"),
        RateLimit(rate=10, per="tenant", applies_to="model"),
        RateLimit(rate=10, per="user", applies_to="tool"),
    ]
    limiter = RateLimiterMiddleware(limits, store=store, clock=clock)
    orchestrator = orchestrator_factory(calling_lookup, middleware=[limiter], tools=[lookup])

    await orchestrator.execute("go", context=TenantContext(tenant_id="acme", user_id="bob"))
    keys = [[charge.key for charge in charges] for charges in store.acquired]
    assert keys == [
        ["global:all-calls", "tenant:acme:model-calls"],
        ["global:all-calls", "tenant:acme:user:bob:tool-calls"],
        ["global:all-calls", "tenant:acme:model-calls"],
    ]


async def test_remembered_charges_never_cross_tenants_or_users(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    """The limiter reuses a call's charge per bucket key: each tenant and user keeps its own."""
    clock = FakeClock()
    limiter = RateLimiterMiddleware(
        [
            RateLimit(rate=0.01, burst=1, per="tool"),
            RateLimit(rate=0.01, burst=2, per="user", applies_to="tool"),
        ],
        clock=clock,
    )
    orchestrator = orchestrator_factory(calling_lookup, middleware=[limiter], tools=[lookup])
    acme_bob = TenantContext(tenant_id="acme", user_id="bob")
    globex_bob = TenantContext(tenant_id="globex", user_id="bob")

    for tenant in (acme_bob, globex_bob):
        assert (await orchestrator.execute("go", context=tenant)).output == "done"
    for tenant in (acme_bob, globex_bob):
        with pytest.raises(RateLimitExceededError) as refused:
            await orchestrator.execute("go", context=tenant)
        assert refused.value.key == f"tenant:{tenant.tenant_id}:tool:lookup:tool-calls"


async def test_remembered_charges_are_bounded_and_keep_their_keys() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(RateLimit(rate=1, per="tool"), store=store, clock=clock)
    names = [f"tool{index}" for index in range(_CACHED_CHARGES + 10)]
    for name in names:
        await limiter.wrap_tool_call(tool_call_of(name), answer)
    clock.advance(1)  # the first bucket is full again, but its charge was forgotten
    await limiter.wrap_tool_call(tool_call_of(names[0]), answer)
    keys = [charges[0].key for charges in store.acquired]
    assert keys == [f"tenant:-:tool:{name}:tool-calls" for name in [*names, names[0]]]
    [bucket] = limiter._buckets["tool"]
    assert len(bucket._charges) <= _CACHED_CHARGES


async def test_a_memory_store_subclass_is_asked_through_its_own_acquire() -> None:
    """The memory store's no-await path must not bypass a subclass that overrides acquire."""

    class Counting(MemoryRateLimitStore):
        def __init__(self, clock: FakeClock) -> None:
            super().__init__(clock)
            self.calls = 0

        async def acquire(self, charges: Sequence[Charge]) -> Admission:
            self.calls += 1
            return await super().acquire(charges)

    clock = FakeClock()
    store = Counting(clock)
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1), store=store, clock=clock)
    await limiter.wrap_tool_call(tool_call_of(), answer)
    with pytest.raises(RateLimitExceededError):
        await limiter.wrap_tool_call(tool_call_of(), answer)
    assert store.calls == 2


async def test_a_refusal_by_one_limit_takes_nothing_from_the_others() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        [RateLimit(rate=0.01, burst=2, per="tenant"), RateLimit(rate=0.01, burst=1, per="tool")],
        store=store,
        clock=clock,
    )
    await limiter.wrap_tool_call(tool_call_of("a"), answer)
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_tool_call(tool_call_of("a"), answer)
    assert refused.value.key == "tenant:-:tool:a:tool-calls"
    await limiter.wrap_tool_call(tool_call_of("b"), answer)  # the tenant's second token is left


async def test_a_key_function_picks_the_bucket_or_leaves_the_call_unlimited() -> None:
    def per_search(kind: str, name: str) -> str | None:
        return f"{kind}-{name}" if name == "search" else None

    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=1, per=per_search), clock=FakeClock())
    for _ in range(3):
        await limiter.wrap_tool_call(tool_call_of("lookup"), answer)
    await limiter.wrap_tool_call(tool_call_of("search"), answer)
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_tool_call(tool_call_of("search"), answer)
    assert refused.value.key == "tenant:-:key:tool-search:all-calls"


async def test_a_key_function_returning_no_key_is_a_config_error() -> None:
    limiter = RateLimiterMiddleware(RateLimit(rate=1, per=lambda kind, name: ""), clock=FakeClock())
    with pytest.raises(ConfigError, match="key function"):
        await limiter.wrap_tool_call(tool_call_of(), answer)


async def test_tokens_reserve_the_estimate_then_adjust_to_the_usage() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        RateLimit(rate=100, burst=10_000, unit="tokens"), store=store, clock=clock
    )
    request = model_request(max_tokens=500)
    estimate = estimate_tokens(request.messages) + 500

    response = await limiter.wrap_model_call(request, replying(30, 70))
    assert response.usage.total_tokens == 100
    [[reserved]] = store.acquired
    assert (reserved.key, reserved.cost) == ("tenant:-:model-tokens", estimate)
    [[adjusted]] = store.adjusted
    assert (adjusted.key, adjusted.cost) == ("tenant:-:model-tokens", 100 - estimate)
    await limiter.wrap_tool_call(tool_call_of(), answer)  # tools spend no tokens
    assert len(store.acquired) == 1


async def test_an_exact_estimate_needs_no_adjustment() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        RateLimit(rate=100, burst=10_000, unit="tokens"), store=store, clock=clock
    )
    request = model_request(max_tokens=50)
    estimate = estimate_tokens(request.messages) + 50
    await limiter.wrap_model_call(request, replying(estimate - 50, 50))
    assert store.adjusted == []


async def test_tokens_actually_used_bound_the_next_calls() -> None:
    clock = FakeClock()
    limiter = RateLimiterMiddleware(
        RateLimit(rate=10, burst=1_000, unit="tokens"),
        clock=clock,
    )
    await limiter.wrap_model_call(model_request(max_tokens=100), replying(600, 300))
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_model_call(model_request(max_tokens=100), replying(1, 1))
    estimate = estimate_tokens(model_request().messages) + 100
    assert refused.value.retry_after == pytest.approx((900 + estimate - 1_000) / 10)


async def test_the_default_max_tokens_is_reserved_when_the_request_names_none() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    config = RateLimitConfig(
        limits=(RateLimit(rate=1, burst=5_000, unit="tokens"),), default_max_tokens=1_000
    )
    limiter = RateLimiterMiddleware(config, store=store, clock=clock)
    await limiter.wrap_model_call(model_request(max_tokens=None), replying(1, 1))
    assert store.acquired[0][0].cost == estimate_tokens(model_request().messages) + 1_000


async def test_a_failed_model_call_gets_its_whole_reservation_back() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        [RateLimit(rate=1, burst=10_000, unit="tokens"), RateLimit(rate=1, burst=5)],
        store=store,
        clock=clock,
    )
    error = TimeoutError("provider timed out")

    async def failing(request: ModelRequest) -> ModelResponse:
        raise error

    with pytest.raises(TimeoutError) as raised:
        await limiter.wrap_model_call(model_request(max_tokens=100), failing)
    assert raised.value is error
    reserved, _call = store.acquired[0]
    [[refund]] = store.adjusted  # the call itself happened: only the tokens come back
    assert (refund.key, refund.cost) == (reserved.key, -reserved.cost)


async def test_a_cancelled_model_call_gets_its_whole_reservation_back() -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        RateLimit(rate=1, burst=10_000, unit="tokens"), store=store, clock=clock
    )
    started = asyncio.Event()

    async def hanging(request: ModelRequest) -> ModelResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never answers")

    task = asyncio.create_task(limiter.wrap_model_call(model_request(max_tokens=100), hanging))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [[refund]] = store.adjusted
    assert refund.cost == -store.acquired[0][0].cost


async def test_a_call_larger_than_the_burst_is_refused_without_calling_the_model() -> None:
    limiter = RateLimiterMiddleware(RateLimit(rate=1, burst=100, unit="tokens"), clock=FakeClock())
    called: list[ModelRequest] = []

    async def next(request: ModelRequest) -> ModelResponse:
        called.append(request)
        return await replying(1, 1)(request)

    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.wrap_model_call(model_request(max_tokens=500), next)
    assert math.isinf(refused.value.retry_after)
    assert called == []


@pytest.mark.parametrize("max_tokens", [0, -5, "100", 2.5, True])
async def test_a_bad_max_tokens_setting_is_refused_and_charges_nothing(max_tokens: object) -> None:
    clock = FakeClock()
    store = SpyStore(clock)
    limiter = RateLimiterMiddleware(
        RateLimit(rate=1, burst=10_000, unit="tokens"), store=store, clock=clock
    )
    with pytest.raises(InvalidInputError, match="max_tokens") as refused:
        await limiter.wrap_model_call(model_request(max_tokens=max_tokens), replying(1, 1))
    assert refused.value.errors[0][0] == "settings.max_tokens"
    assert store.acquired == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": 1, "burst": 0}, "burst"),
        ({"rate": 1, "burst": 0.5}, "burst"),
        ({"rate": 1, "per": "workspace"}, "per"),
        ({"rate": 1, "unit": "dollars"}, "unit"),
        ({"rate": 1, "unit": "tokens"}, "burst"),
        ({"rate": 1, "applies_to": "agent"}, "applies_to"),
        ({"rate": 1, "per": "tool", "applies_to": "model"}, "applies_to"),
        ({"rate": 1, "unit": "tokens", "burst": 9, "applies_to": "tool"}, "applies_to"),
        ({"rate": 1, "unit": "tokens", "burst": 9, "per": "tool"}, "per"),
        ({"rate": 1, "name": ""}, "name"),
    ],
)
def test_a_bad_limit_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"RateLimit.{field}"):
        RateLimit(**options)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limits": ()}, "limits"),
        ({"limits": ({"rate": 1},)}, "limits"),
        ({"limits": (RateLimit(rate=1), RateLimit(rate=2))}, "limits"),
        ({"limits": (RateLimit(rate=1),), "max_wait": -1}, "max_wait"),
        ({"limits": (RateLimit(rate=1),), "fail_open": 1}, "fail_open"),
        ({"limits": (RateLimit(rate=1),), "default_max_tokens": 0}, "default_max_tokens"),
    ],
)
def test_a_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"RateLimitConfig.{field}"):
        RateLimitConfig(**options)


def test_limits_may_be_given_as_a_list_and_need_distinct_names_to_share_a_scope() -> None:
    limits = [RateLimit(rate=1), RateLimit(rate=100 / 60, burst=100, name="per-minute")]
    assert RateLimitConfig(limits=limits).limits == tuple(limits)  # type: ignore[arg-type]
    assert RateLimiterMiddleware(limits).config.limits == tuple(limits)


@pytest.mark.parametrize("config", [None, {"rate": 1}, [RateLimit(rate=1), "fast"]])
def test_the_middleware_refuses_what_is_not_a_config_at_construction(config: Any) -> None:
    # Any: deliberately ill-typed configs, as they come from YAML or JSON.
    with pytest.raises(ConfigError, match="RateLimitConfig or RateLimit"):
        RateLimiterMiddleware(config)


def test_rate_limit_exceeded_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(RateLimitExceededError("tenant:a:all-calls", 1.5)))
    assert (error.key, error.retry_after, error.guard) == (
        "tenant:a:all-calls",
        1.5,
        "rate_limiter",
    )
