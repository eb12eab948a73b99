"""The breaker's state machine, driven by a fake clock: no real waiting."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from onionskin import (
    BudgetExceededError,
    CallLimitExceededError,
    CircuitOpenError,
    ConfigError,
    GuardTimeoutError,
    InvalidInputError,
    ModelRequest,
    RateLimitExceededError,
    TenantContext,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.stores.circuit import CircuitAdmission, CircuitPolicy, MemoryCircuitStore, Outcome
from onionskin.stores.redis_circuit import RedisCircuitStore
from onionskin.testing import FakeClock, tool_call
from tests.conftest import OrchestratorFactory


class Flaky:
    """A tool that fails while `broken` is set, counting its real calls."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    async def fetch(self, url: str) -> str:
        """Fetch a page."""
        self.calls += 1
        if self.broken:
            raise ConnectionError("upstream down")
        return "page"


def calling_fetch(request: ModelRequest) -> Any:
    if request.messages[-1].role == "tool":
        return "ok"
    return tool_call("fetch", url="https://example.test")


async def run_once(orchestrator: Any, **options: Any) -> Any:
    return await orchestrator.execute("go", **options)


async def test_opens_after_the_threshold_then_probes_and_closes(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30), clock=clock
    )
    flaky = Flaky()
    orchestrator = orchestrator_factory(calling_fetch, middleware=[breaker], tools=[flaky.fetch])

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await run_once(orchestrator)
    assert await breaker.state("tool:fetch") == "open"

    with pytest.raises(CircuitOpenError) as refused:
        await run_once(orchestrator)
    assert flaky.calls == 3  # refused without calling the tool
    assert refused.value.retry_after == pytest.approx(30)
    assert refused.value.key == "tool:fetch"

    clock.advance(29)
    with pytest.raises(CircuitOpenError) as refused:
        await run_once(orchestrator)
    assert refused.value.retry_after == pytest.approx(1)

    clock.advance(1)
    assert await breaker.state("tool:fetch") == "half_open"
    flaky.broken = False
    assert (await run_once(orchestrator)).output == "ok"
    assert await breaker.state("tool:fetch") == "closed"
    assert flaky.calls == 4


async def test_a_failed_probe_opens_the_circuit_again(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, recovery_timeout=10), clock=clock
    )
    flaky = Flaky()
    orchestrator = orchestrator_factory(calling_fetch, middleware=[breaker], tools=[flaky.fetch])

    with pytest.raises(ConnectionError):
        await run_once(orchestrator)
    clock.advance(10)
    with pytest.raises(ConnectionError):
        await run_once(orchestrator)  # the probe fails
    assert await breaker.state("tool:fetch") == "open"
    with pytest.raises(CircuitOpenError) as refused:
        await run_once(orchestrator)
    assert refused.value.retry_after == pytest.approx(10)


async def test_half_open_admits_only_the_allowed_number_of_probes() -> None:
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, recovery_timeout=5, half_open_max_calls=1),
        clock=clock,
    )
    release = asyncio.Event()

    async def slow_probe(call: Any) -> str:
        await release.wait()
        return "recovered"

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await breaker._guard("tool:x", failing, None)
    clock.advance(5)
    probe = asyncio.create_task(breaker._guard("tool:x", slow_probe, None))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker._guard("tool:x", slow_probe, None)
    release.set()
    assert await probe == "recovered"
    assert await breaker.state("tool:x") == "closed"


async def test_ignored_and_uncounted_errors_do_not_open_the_circuit() -> None:
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, ignore=(InvalidInputError,)), clock=FakeClock()
    )

    async def refused_input(call: Any) -> str:
        raise InvalidInputError("bad argument")

    async def cancelled(call: Any) -> str:
        raise asyncio.CancelledError

    for raiser in (refused_input, cancelled):
        with pytest.raises((InvalidInputError, asyncio.CancelledError)):
            await breaker._guard("tool:x", raiser, None)
    assert await breaker.state("tool:x") == "closed"


@pytest.mark.parametrize(
    "refusal",
    [
        RateLimitExceededError("tenant:acme", 1.0),
        BudgetExceededError("acme"),
        CallLimitExceededError("tool", 3),
        InvalidInputError("bad argument"),
    ],
)
async def test_other_guards_refusals_never_open_the_circuit_by_default(
    refusal: Exception,
) -> None:
    breaker = CircuitBreakerMiddleware(CircuitBreakerConfig(failure_threshold=2), clock=FakeClock())

    async def refused(call: Any) -> str:
        raise refusal

    for _ in range(5):
        with pytest.raises(type(refusal)):
            await breaker._guard("tool:x", refused, None)
    assert await breaker.state("tool:x") == "closed"


async def test_a_timeout_counts_as_a_failure_of_the_callee() -> None:
    breaker = CircuitBreakerMiddleware(CircuitBreakerConfig(failure_threshold=2), clock=FakeClock())

    async def slow(call: Any) -> str:
        raise GuardTimeoutError("tool:x", 1.0)

    for _ in range(2):
        with pytest.raises(GuardTimeoutError):
            await breaker._guard("tool:x", slow, None)
    assert await breaker.state("tool:x") == "open"


async def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreakerMiddleware(CircuitBreakerConfig(failure_threshold=2), clock=FakeClock())

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    async def working(call: Any) -> str:
        return "up"

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await breaker._guard("tool:x", failing, None)
        await breaker._guard("tool:x", working, None)
    assert await breaker.state("tool:x") == "closed"


async def test_model_calls_and_tenants_get_their_own_circuits(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, per="tenant_target"), clock=FakeClock()
    )
    flaky = Flaky()
    orchestrator = orchestrator_factory(calling_fetch, middleware=[breaker], tools=[flaky.fetch])

    with pytest.raises(ConnectionError):
        await run_once(orchestrator, context=TenantContext(tenant_id="acme"))
    assert await breaker.state("acme:tool:fetch") == "open"
    assert await breaker.state("globex:tool:fetch") == "closed"
    assert await breaker.state("acme:model:scripted") == "closed"
    flaky.broken = False
    result = await run_once(orchestrator, context=TenantContext(tenant_id="globex"))
    assert result.output == "ok"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"recovery_timeout": 0}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"count": (ValueError, "x")}, "count"),
        ({"ignore": (int,)}, "ignore"),
        ({"per": "user"}, "per"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"fail_open": "no"}, "fail_open"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        CircuitBreakerConfig(**options)


def test_circuit_open_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(CircuitOpenError("tool:fetch", 12.5)))
    assert (error.key, error.retry_after, error.guard) == ("tool:fetch", 12.5, "circuit_breaker")


def test_a_config_of_the_wrong_type_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="CircuitBreakerConfig"):
        CircuitBreakerMiddleware({"failure_threshold": 2})  # type: ignore[arg-type]


async def test_guards_a_plain_function_call_and_reraises_its_error_unchanged() -> None:
    """The MiddlewarePipeline level: a ToolCall of a plain function, a plain async next."""
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10), clock=clock
    )
    error = ConnectionError("upstream down")
    calls: list[str] = []

    async def next_failing(call: ToolCall) -> ToolResult:
        calls.append(call.tool_name)
        raise error

    async def next_working(call: ToolCall) -> ToolResult:
        calls.append(call.tool_name)
        return ToolResult(tool_name=call.tool_name, value=42)

    call = ToolCall(tool_name="lookup", kwargs={"q": "x"}, session_id="s1")
    for _ in range(2):
        with pytest.raises(ConnectionError) as raised:
            await breaker.wrap_tool_call(call, next_failing)
        assert raised.value is error
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.wrap_tool_call(call, next_working)
    assert refused.value.key == "tool:lookup"
    assert refused.value.retry_after == pytest.approx(10)
    assert calls == ["lookup", "lookup"]
    clock.advance(10)
    assert (await breaker.wrap_tool_call(call, next_working)).value == 42
    assert await breaker.state("tool:lookup") == "closed"


async def test_two_breakers_on_one_store_share_the_circuit() -> None:
    """What two processes on one Redis see, here with one memory store."""
    clock = FakeClock()
    store = MemoryCircuitStore(clock)
    config = CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10)
    first = CircuitBreakerMiddleware(config, clock=clock, store=store)
    second = CircuitBreakerMiddleware(config, clock=clock, store=store)

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await first._guard("tool:x", failing, None)
    with pytest.raises(ConnectionError):
        await second._guard("tool:x", failing, None)
    assert await first.state("tool:x") == "open"
    with pytest.raises(CircuitOpenError):
        await first._guard("tool:x", failing, None)


async def test_breakers_with_their_own_redis_clients_share_one_circuit(
    redis_url: str, redis_prefix: str
) -> None:
    """Two processes' breakers, each with its own connection, on one Redis circuit."""
    stores = [RedisCircuitStore.from_url(redis_url, prefix=redis_prefix) for _ in range(2)]
    config = CircuitBreakerConfig(failure_threshold=2, recovery_timeout=30)
    first, second = (CircuitBreakerMiddleware(config, store=store) for store in stores)

    async def failing(call: ToolCall) -> ToolResult:
        raise ConnectionError("down")

    try:
        with pytest.raises(ConnectionError):
            await first.wrap_tool_call(ToolCall(tool_name="lookup"), failing)
        with pytest.raises(ConnectionError):
            await second.wrap_tool_call(ToolCall(tool_name="lookup"), failing)
        with pytest.raises(CircuitOpenError) as refused:
            await first.wrap_tool_call(ToolCall(tool_name="lookup"), failing)
        assert 29 < refused.value.retry_after <= 30
        assert await second.state("tool:lookup") == "open"
    finally:
        await stores[0].scripts.client.delete(stores[0].scripts.key("circuit", "tool:lookup"))
        for store in stores:
            await store.aclose()


async def test_a_probe_slot_held_past_the_recovery_timeout_goes_to_a_new_probe() -> None:
    """A probe whose process died must not keep the circuit half open for ever."""
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, recovery_timeout=5), clock=clock
    )
    never = asyncio.Event()

    async def hanging(call: Any) -> str:
        await never.wait()
        return "late"

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    async def working(call: Any) -> str:
        return "up"

    with pytest.raises(ConnectionError):
        await breaker._guard("tool:x", failing, None)
    clock.advance(5)
    stuck = asyncio.create_task(breaker._guard("tool:x", hanging, None))
    await asyncio.sleep(0)
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as refused:
        await breaker._guard("tool:x", working, None)
    assert refused.value.retry_after == pytest.approx(1)
    clock.advance(1)
    assert await breaker._guard("tool:x", working, None) == "up"
    assert await breaker.state("tool:x") == "closed"
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert await breaker.state("tool:x") == "closed"


async def test_a_call_admitted_before_the_circuit_opened_does_not_close_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, recovery_timeout=5), clock=clock
    )
    release = asyncio.Event()

    async def slow(call: Any) -> str:
        await release.wait()
        return "late success"

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    old = asyncio.create_task(breaker._guard("tool:x", slow, None))
    await asyncio.sleep(0)
    with pytest.raises(ConnectionError):
        await breaker._guard("tool:x", failing, None)
    release.set()
    assert await old == "late success"
    assert await breaker.state("tool:x") == "open"


async def test_only_a_failure_is_recorded_under_a_shield(monkeypatch: pytest.MonkeyPatch) -> None:
    """Successes pay no task; a failure's record stays safe from a second cancellation."""
    shielded: list[object] = []
    real_shield = asyncio.shield

    def counting_shield(awaitable: Any) -> Any:
        shielded.append(awaitable)
        return real_shield(awaitable)

    monkeypatch.setattr(asyncio, "shield", counting_shield)
    breaker = CircuitBreakerMiddleware(CircuitBreakerConfig(failure_threshold=2), clock=FakeClock())

    async def working(call: Any) -> str:
        return "up"

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    for _ in range(3):
        assert await breaker._guard("tool:x", working, None) == "up"
    assert shielded == []
    with pytest.raises(ConnectionError):
        await breaker._guard("tool:x", failing, None)
    assert len(shielded) == 1


async def test_healthy_circuits_keep_no_state_in_memory() -> None:
    store = MemoryCircuitStore(FakeClock())
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=2, ignore=(ValueError,)), store=store
    )

    async def working(call: Any) -> str:
        return "up"

    async def ignored(call: Any) -> str:
        raise ValueError("not the callee's fault")

    async def failing(call: Any) -> str:
        raise ConnectionError("down")

    for name in ("a", "b", "c"):
        assert await breaker._guard(f"tool:{name}", working, None) == "up"
        with pytest.raises(ValueError, match="callee"):
            await breaker._guard(f"tool:{name}", ignored, None)
    assert store._circuits == {}
    for _ in range(2):  # a failure on a stateless circuit still counts from zero
        with pytest.raises(ConnectionError):
            await breaker._guard("tool:a", failing, None)
    assert await breaker.state("tool:a") == "open"
    assert await breaker.state("tool:b") == "closed"


async def test_a_memory_store_subclass_is_asked_through_its_own_methods() -> None:
    """The memory store's no-await path must not bypass a subclass that overrides it."""

    class Counting(MemoryCircuitStore):
        def __init__(self, clock: FakeClock) -> None:
            super().__init__(clock)
            self.asked: list[str] = []

        async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
            self.asked.append("admit")
            return await super().admit(key, policy)

        async def record(
            self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
        ) -> None:
            self.asked.append(outcome)
            await super().record(key, policy, outcome, probe=probe)

    store = Counting(FakeClock())
    breaker = CircuitBreakerMiddleware(store=store)
    call = ToolCall(tool_name="lookup")

    async def working(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=1)

    assert (await breaker.wrap_tool_call(call, working)).value == 1
    assert store.asked == ["admit", "success"]
