"""One suite for every `CircuitStore`: memory and Redis must move circuits the same way.

The memory store reads a `FakeClock`; Redis reads its own clock (`TIME`), which no test can
move, so its `advance` really waits: recovery timeouts here are a few milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from onionskin import StoreError
from onionskin.stores._redis import RedisScripts
from onionskin.stores.circuit import CircuitPolicy, CircuitStore, MemoryCircuitStore
from onionskin.stores.redis_circuit import RedisCircuitStore
from onionskin.testing import FakeClock
from tests.contract._backends import Backend as _Backend
from tests.contract._backends import open_backend

RECOVERY = 0.1
SLACK = 0.05
"""Seconds of real time Redis round trips may take off a computed wait."""
POLICY = CircuitPolicy(failure_threshold=2, recovery_timeout=RECOVERY, half_open_max_calls=1)


Backend = _Backend[CircuitStore]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    memory: Callable[[FakeClock], CircuitStore] = MemoryCircuitStore
    redis: Callable[[RedisScripts], CircuitStore] = RedisCircuitStore
    async for opened in open_backend(request, memory, redis):
        yield opened


async def fail(store: CircuitStore, key: str = "tool:x", policy: CircuitPolicy = POLICY) -> None:
    admission = await store.admit(key, policy)
    assert admission.allowed
    await store.record(key, policy, "failure", probe=admission.probe)


async def open_circuit(store: CircuitStore, key: str = "tool:x") -> None:
    for _ in range(POLICY.failure_threshold):
        await fail(store, key)
    assert await store.state(key) == "open"


async def test_an_unknown_circuit_is_closed_and_admits(backend: Backend) -> None:
    admission = await backend.store.admit("tool:new", POLICY)
    assert (admission.allowed, admission.probe) == (True, False)
    assert await backend.store.state("tool:new") == "closed"


async def test_opens_at_the_threshold_and_refuses_until_the_recovery_timeout(
    backend: Backend,
) -> None:
    store = backend.store
    await fail(store)
    assert await store.state("tool:x") == "closed"
    await fail(store)
    assert await store.state("tool:x") == "open"
    refused = await store.admit("tool:x", POLICY)
    assert not refused.allowed
    assert RECOVERY - SLACK < refused.retry_after <= RECOVERY + 1e-6


async def test_a_success_resets_the_consecutive_failures(backend: Backend) -> None:
    store = backend.store
    await fail(store)
    admission = await store.admit("tool:x", POLICY)
    await store.record("tool:x", POLICY, "success", probe=admission.probe)
    await fail(store)
    assert await store.state("tool:x") == "closed"


async def test_after_the_timeout_one_probe_goes_through_and_its_success_closes(
    backend: Backend,
) -> None:
    store = backend.store
    await open_circuit(store)
    await backend.advance(RECOVERY)
    assert await store.state("tool:x") == "half_open"
    probe = await store.admit("tool:x", POLICY)
    assert (probe.allowed, probe.probe) == (True, True)
    second = await store.admit("tool:x", POLICY)
    assert not second.allowed
    assert 0 < second.retry_after <= RECOVERY + 1e-6
    await store.record("tool:x", POLICY, "success", probe=True)
    assert await store.state("tool:x") == "closed"
    assert (await store.admit("tool:x", POLICY)).probe is False


async def test_a_failed_probe_opens_the_circuit_again(backend: Backend) -> None:
    store = backend.store
    await open_circuit(store)
    await backend.advance(RECOVERY)
    await fail(store)
    assert await store.state("tool:x") == "open"
    assert not (await store.admit("tool:x", POLICY)).allowed


async def test_an_uncounted_end_frees_the_probe_slot_and_changes_nothing_else(
    backend: Backend,
) -> None:
    store = backend.store
    await open_circuit(store)
    await backend.advance(RECOVERY)
    assert (await store.admit("tool:x", POLICY)).probe
    await store.record("tool:x", POLICY, "ignored", probe=True)
    assert await store.state("tool:x") == "half_open"
    assert (await store.admit("tool:x", POLICY)).probe


async def test_half_open_admits_as_many_probes_as_allowed(backend: Backend) -> None:
    store = backend.store
    policy = CircuitPolicy(failure_threshold=1, recovery_timeout=RECOVERY, half_open_max_calls=2)
    await fail(store, "model:m", policy)
    await backend.advance(RECOVERY)
    assert (await store.admit("model:m", policy)).probe
    assert (await store.admit("model:m", policy)).probe
    assert not (await store.admit("model:m", policy)).allowed


async def test_a_probe_slot_held_past_the_timeout_is_given_to_a_new_probe(
    backend: Backend,
) -> None:
    store = backend.store
    await open_circuit(store)
    await backend.advance(RECOVERY)
    assert (await store.admit("tool:x", POLICY)).probe  # this probe's process dies
    await backend.advance(RECOVERY)
    assert (await store.admit("tool:x", POLICY)).probe


async def test_results_of_calls_admitted_before_the_circuit_opened_do_not_move_it(
    backend: Backend,
) -> None:
    store = backend.store
    await open_circuit(store)
    await store.record("tool:x", POLICY, "success", probe=False)
    assert await store.state("tool:x") == "open"
    await backend.advance(RECOVERY)
    assert (await store.admit("tool:x", POLICY)).probe
    await store.record("tool:x", POLICY, "failure", probe=False)
    await store.record("tool:x", POLICY, "success", probe=False)
    assert await store.state("tool:x") == "half_open"
    assert not (await store.admit("tool:x", POLICY)).allowed


async def test_circuits_are_independent(backend: Backend) -> None:
    store = backend.store
    await open_circuit(store, "acme:tool:x")
    assert await store.state("globex:tool:x") == "closed"
    assert (await store.admit("globex:tool:x", POLICY)).allowed


async def test_redis_forgets_a_healthy_circuit_and_expires_a_failing_one(
    redis_url: str, redis_prefix: str
) -> None:
    scripts = RedisScripts.from_url(redis_url, prefix=redis_prefix)
    store = RedisCircuitStore(scripts)
    key = scripts.key("circuit", "tool:x")
    try:
        await fail(store)
        assert 0 < await scripts.client.ttl(key) <= 86_400 + 1
        admission = await store.admit("tool:x", POLICY)
        await store.record("tool:x", POLICY, "success", probe=admission.probe)
        assert not await scripts.client.exists(key)
    finally:
        await scripts.client.delete(key)
        await scripts.aclose()


async def test_redis_refuses_to_read_a_key_that_holds_no_circuit(
    redis_url: str, redis_prefix: str
) -> None:
    scripts = RedisScripts.from_url(redis_url, prefix=redis_prefix)
    key = scripts.key("circuit", "tool:x")
    try:
        await scripts.client.hset(key, "state", "melted")
        with pytest.raises(StoreError, match="holds no circuit"):
            await RedisCircuitStore(scripts).state("tool:x")
    finally:
        await scripts.client.delete(key)
        await scripts.aclose()
