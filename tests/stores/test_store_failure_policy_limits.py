"""Rate limiter and circuit breaker with their Redis store down: fail closed or fail open."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import pytest

from onionskin import (
    GuardStoreError,
    Message,
    ModelRequest,
    ModelResponse,
    StoreError,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.middleware.rate_limit import (
    RateLimit,
    RateLimitConfig,
    RateLimiterMiddleware,
    Unit,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.stores.circuit import (
    CircuitAdmission,
    CircuitPolicy,
    MemoryCircuitStore,
    Outcome,
    State,
)
from onionskin.stores.rate_limit import Admission, Charge, MemoryRateLimitStore, RateLimitStore
from onionskin.stores.redis_circuit import RedisCircuitStore
from onionskin.stores.redis_rate_limit import RedisRateLimitStore
from onionskin.testing import FakeClock, ScriptedModel, tool_call
from tests.conftest import DOWN_REDIS_URL, OrchestratorFactory

GUARD_LOGGER = "onionskin.guards"


@pytest.fixture
async def down_limits() -> AsyncIterator[RedisRateLimitStore]:
    store = RedisRateLimitStore.from_url(DOWN_REDIS_URL, prefix="onionskin-test:down")
    yield store
    await store.aclose()


@pytest.fixture
async def down_circuits() -> AsyncIterator[RedisCircuitStore]:
    store = RedisCircuitStore.from_url(DOWN_REDIS_URL, prefix="onionskin-test:down")
    yield store
    await store.aclose()


class Callee:
    """A plain function behind the guard, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call: ToolCall) -> ToolResult:
        self.calls += 1
        return ToolResult(tool_name=call.tool_name, value="ok")


def lookup_call() -> ToolCall:
    return ToolCall(tool_name="lookup", kwargs={"q": "x"})


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER]


def limiter(
    store: RateLimitStore, *, fail_open: bool, unit: Unit = "calls"
) -> RateLimiterMiddleware:
    limit = RateLimit(rate=1, burst=10_000, unit=unit)
    return RateLimiterMiddleware(RateLimitConfig(limits=(limit,), fail_open=fail_open), store=store)


async def test_a_fail_closed_limiter_refuses_the_call_with_a_clear_error(
    down_limits: RedisRateLimitStore,
) -> None:
    callee = Callee()
    with pytest.raises(GuardStoreError) as refused:
        await limiter(down_limits, fail_open=False).wrap_tool_call(lookup_call(), callee)
    assert refused.value.guard == "rate_limiter"
    assert "fail_open=True" in str(refused.value)
    assert "127.0.0.1:1" in str(refused.value)
    assert isinstance(refused.value.__cause__, StoreError)
    assert callee.calls == 0


async def test_a_fail_closed_limiter_fails_the_run(
    down_limits: RedisRateLimitStore, orchestrator_factory: OrchestratorFactory
) -> None:
    orchestrator = orchestrator_factory(["hi"], middleware=[limiter(down_limits, fail_open=False)])
    with pytest.raises(GuardStoreError, match="rate_limiter"):
        await orchestrator.execute("go")


async def test_a_fail_open_limiter_lets_calls_through_and_logs_once(
    down_limits: RedisRateLimitStore, caplog: pytest.LogCaptureFixture
) -> None:
    callee = Callee()
    guard = limiter(down_limits, fail_open=True)
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        for _ in range(3):
            assert (await guard.wrap_tool_call(lookup_call(), callee)).value == "ok"
    assert callee.calls == 3
    [logged] = warnings(caplog)
    assert "rate_limiter" in logged
    assert "failing open" in logged


async def test_a_fail_open_token_limiter_does_not_try_to_reconcile(
    down_limits: RedisRateLimitStore,
    orchestrator_factory: OrchestratorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = limiter(down_limits, fail_open=True, unit="tokens")
    orchestrator = orchestrator_factory(["hi", "again"], middleware=[guard])
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert (await orchestrator.execute("go")).output == "hi"
        assert (await orchestrator.execute("go")).output == "again"
    assert len(warnings(caplog)) == 1


async def test_a_fail_closed_breaker_refuses_the_call_with_a_clear_error(
    down_circuits: RedisCircuitStore,
) -> None:
    callee = Callee()
    breaker = CircuitBreakerMiddleware(CircuitBreakerConfig(), store=down_circuits)
    with pytest.raises(GuardStoreError) as refused:
        await breaker.wrap_tool_call(lookup_call(), callee)
    assert refused.value.guard == "circuit_breaker"
    assert isinstance(refused.value.__cause__, StoreError)
    assert callee.calls == 0
    with pytest.raises(StoreError):
        await breaker.state("tool:lookup")


async def test_a_fail_open_breaker_lets_calls_through_and_logs_once(
    down_circuits: RedisCircuitStore,
    orchestrator_factory: OrchestratorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, fail_open=True), store=down_circuits
    )
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    def script(request: ModelRequest) -> ScriptItem:
        return "done" if request.messages[-1].role == "tool" else tool_call("lookup", q="x")

    async def lookup(q: str) -> str:
        """Look something up."""
        return "found"

    orchestrator = orchestrator_factory(script, middleware=[breaker], tools=[lookup])
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        for _ in range(2):
            with pytest.raises(ConnectionError) as raised:
                await breaker.wrap_tool_call(lookup_call(), failing)
            assert raised.value is error
        assert (await orchestrator.execute("go")).output == "done"
    [logged] = warnings(caplog)
    assert "circuit_breaker" in logged


class AdjustFails:
    """A limiter store that admits, then fails when the call is reconciled."""

    def __init__(self) -> None:
        self.inner = MemoryRateLimitStore(FakeClock())

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        return await self.inner.acquire(charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        raise StoreError("redis: ConnectionError: gone mid-call")


async def test_a_store_failing_after_the_call_never_hides_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = limiter(AdjustFails(), fail_open=False, unit="tokens")
    request = ModelRequest(
        model=ScriptedModel(["unused"]), messages=[Message("user", [TextPart("hi")])]
    )

    async def answer(request: ModelRequest) -> ModelResponse:
        return ModelResponse(message=Message("assistant", [TextPart("yo")]), usage=Usage())

    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert (await guard.wrap_model_call(request, answer)).message.text == "yo"
    [logged] = warnings(caplog)
    assert "could not reconcile" in logged


class RecordFails(MemoryCircuitStore):
    """A circuit store that admits, then fails when the outcome is recorded."""

    async def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        raise StoreError("redis: ConnectionError: gone mid-call")


async def test_a_breaker_store_failing_after_the_call_keeps_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = CircuitBreakerMiddleware(store=RecordFails(FakeClock()))
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        with pytest.raises(ConnectionError) as raised:
            await breaker.wrap_tool_call(lookup_call(), failing)
        assert raised.value is error
        assert (await breaker.wrap_tool_call(lookup_call(), Callee())).value == "ok"
    assert [m.split(" (")[0] for m in warnings(caplog)] == [
        "circuit_breaker: could not record a failure",
        "circuit_breaker: could not record a success",
    ]


class AdmitFails(MemoryCircuitStore):
    """A circuit store that cannot be reached at all."""

    async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        raise StoreError("redis: ConnectionError: refused")


async def test_a_fail_open_breaker_neither_counts_nor_records_while_its_store_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = AdmitFails(FakeClock())
    breaker = CircuitBreakerMiddleware(
        CircuitBreakerConfig(failure_threshold=1, fail_open=True), store=store
    )
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert (await breaker.wrap_tool_call(lookup_call(), Callee())).value == "ok"
    assert len(warnings(caplog)) == 1  # the outage, and no failed attempt to record


class Outage:
    """Memory stores that raise `StoreError` while `down` is set."""

    def __init__(self) -> None:
        self.down = True
        self.limits = MemoryRateLimitStore(FakeClock())
        self.circuits = MemoryCircuitStore(FakeClock())

    def check(self) -> None:
        if self.down:
            raise StoreError("redis: ConnectionError: refused")

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        self.check()
        return await self.limits.acquire(charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        self.check()
        await self.limits.adjust(charges)

    async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        self.check()
        return await self.circuits.admit(key, policy)

    async def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        self.check()
        await self.circuits.record(key, policy, outcome, probe=probe)

    async def state(self, key: str) -> State:
        self.check()
        return await self.circuits.state(key)


@pytest.mark.parametrize("guard", ["rate_limiter", "circuit_breaker"])
async def test_a_fail_open_guard_logs_each_outage_once_and_again_after_a_recovery(
    guard: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Outage()
    middleware: RateLimiterMiddleware | CircuitBreakerMiddleware
    if guard == "rate_limiter":
        middleware = limiter(store, fail_open=True)
    else:
        middleware = CircuitBreakerMiddleware(CircuitBreakerConfig(fail_open=True), store=store)
    callee = Callee()
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        for down in (True, True, False, False, True, True):
            store.down = down
            assert (await middleware.wrap_tool_call(lookup_call(), callee)).value == "ok"
    assert callee.calls == 6
    logged = warnings(caplog)
    assert len(logged) == 2
    assert all(guard in message for message in logged)
