"""One suite for every `RateLimitStore`: memory and Redis must admit the same way.

The memory store reads a `FakeClock`; Redis reads its own clock (`TIME`), which no test can
move, so its `advance` really waits. Those waits are milliseconds: rates are chosen so.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import pytest

from onionskin import ConfigError
from onionskin.stores._redis import RedisScripts
from onionskin.stores.rate_limit import Charge, MemoryRateLimitStore, RateLimitStore
from onionskin.stores.redis_rate_limit import RedisRateLimitStore
from onionskin.testing import FakeClock
from tests.contract._backends import Backend as _Backend
from tests.contract._backends import open_backend

SLACK = 0.05
"""Seconds of real time a Redis round trip may add to a computed wait."""


Backend = _Backend[RateLimitStore]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    memory: Callable[[FakeClock], RateLimitStore] = MemoryRateLimitStore
    redis: Callable[[RedisScripts], RateLimitStore] = RedisRateLimitStore
    async for opened in open_backend(request, memory, redis):
        yield opened


def charge(key: str, *, rate: float = 1.0, burst: float = 3.0, cost: float = 1.0) -> Charge:
    return Charge(key=key, rate=rate, burst=burst, cost=cost)


async def test_admits_the_burst_at_once_then_refuses_with_the_wait(backend: Backend) -> None:
    store = backend.store
    for _ in range(3):
        assert (await store.acquire([charge("a", rate=2)])).allowed
    refused = await store.acquire([charge("a", rate=2)])
    assert not refused.allowed
    assert refused.key_that_refused == "a"
    assert refused.retry_after == pytest.approx(0.5, abs=SLACK)


async def test_a_bucket_refills_at_its_rate(backend: Backend) -> None:
    store = backend.store
    # Slow enough that a loaded machine cannot refill it between two calls.
    fast = charge("a", rate=20, burst=2)
    assert (await store.acquire([fast])).allowed
    assert (await store.acquire([fast])).allowed
    refused = await store.acquire([fast])
    assert not refused.allowed
    await backend.advance(refused.retry_after + 0.002)
    assert (await store.acquire([fast])).allowed


async def test_all_charges_or_none(backend: Backend) -> None:
    """Tenant and user limits in one step: a refusal by one takes nothing from the other."""
    store = backend.store
    assert (await store.acquire([charge("user", burst=1)])).allowed
    refused = await store.acquire([charge("tenant", burst=5), charge("user", burst=1)])
    assert (refused.allowed, refused.key_that_refused) == (False, "user")
    for _ in range(5):
        assert (await store.acquire([charge("tenant", burst=5)])).allowed
    assert not (await store.acquire([charge("tenant", burst=5)])).allowed


async def test_names_the_bucket_that_needs_the_longest_wait(backend: Backend) -> None:
    store = backend.store
    slow, fast = charge("slow", rate=0.1, burst=1), charge("fast", rate=1, burst=1)
    assert (await store.acquire([slow, fast])).allowed
    refused = await store.acquire([fast, slow])
    assert refused.key_that_refused == "slow"
    assert refused.retry_after == pytest.approx(10, abs=SLACK)


async def test_weighted_costs_take_as_many_tokens(backend: Backend) -> None:
    store = backend.store
    assert (await store.acquire([charge("t", rate=100, burst=1000, cost=700)])).allowed
    refused = await store.acquire([charge("t", rate=100, burst=1000, cost=400)])
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0, abs=SLACK)
    assert (await store.acquire([charge("t", rate=100, burst=1000, cost=250)])).allowed


async def test_a_cost_above_the_burst_is_refused_for_ever_and_takes_nothing(
    backend: Backend,
) -> None:
    store = backend.store
    refused = await store.acquire([charge("ok", burst=3), charge("huge", burst=3, cost=4)])
    assert (refused.allowed, refused.key_that_refused) == (False, "huge")
    assert math.isinf(refused.retry_after)
    assert (await store.acquire([charge("ok", burst=3, cost=3)])).allowed


async def test_a_refund_gives_tokens_back(backend: Backend) -> None:
    store = backend.store
    estimate = charge("t", rate=0.01, burst=100, cost=100)
    assert (await store.acquire([estimate])).allowed
    await store.adjust([charge("t", rate=0.01, burst=100, cost=-60)])
    assert (await store.acquire([charge("t", rate=0.01, burst=100, cost=60)])).allowed
    assert not (await store.acquire([charge("t", rate=0.01, burst=100, cost=1)])).allowed


async def test_an_extra_charge_is_never_refused_and_puts_the_bucket_in_debt(
    backend: Backend,
) -> None:
    store = backend.store
    assert (await store.acquire([charge("t", rate=10, burst=10, cost=10)])).allowed
    await store.adjust([charge("t", rate=10, burst=10, cost=20)])
    refused = await store.acquire([charge("t", rate=10, burst=10, cost=1)])
    assert refused.retry_after == pytest.approx(2.1, abs=SLACK)


async def test_a_refund_never_fills_a_bucket_beyond_its_burst(backend: Backend) -> None:
    store = backend.store
    await store.adjust([charge("t", burst=2, cost=-50)])
    assert (await store.acquire([charge("t", burst=2, cost=2)])).allowed
    assert not (await store.acquire([charge("t", burst=2)])).allowed


async def test_buckets_are_independent(backend: Backend) -> None:
    store = backend.store
    assert (await store.acquire([charge("tenant:a:calls", burst=1)])).allowed
    assert not (await store.acquire([charge("tenant:a:calls", burst=1)])).allowed
    assert (await store.acquire([charge("tenant:b:calls", burst=1)])).allowed


async def test_no_charges_are_admitted_without_a_trace(backend: Backend) -> None:
    assert (await backend.store.acquire([])).allowed
    await backend.store.adjust([])


async def test_bad_charges_are_refused_and_change_nothing(backend: Backend) -> None:
    store = backend.store
    with pytest.raises(ValueError, match="twice"):
        await store.acquire([charge("a", burst=1), charge("a", burst=1)])
    with pytest.raises(ValueError, match="adjust"):
        await store.acquire([charge("b", burst=1), charge("a", burst=1, cost=-1)])
    with pytest.raises(ValueError, match="twice"):
        await store.adjust([charge("a", burst=1, cost=5), charge("a", burst=1, cost=5)])
    assert (await store.acquire([charge("a", burst=1)])).allowed
    assert (await store.acquire([charge("b", burst=1)])).allowed


async def test_a_single_negative_charge_is_refused_and_changes_nothing(backend: Backend) -> None:
    """The common one-charge acquisition is checked as strictly as several."""
    store = backend.store
    assert (await store.acquire([charge("a", burst=2)])).allowed
    with pytest.raises(ValueError, match="adjust"):
        await store.acquire([charge("a", burst=2, cost=-1)])
    assert (await store.acquire([charge("a", burst=2)])).allowed
    assert not (await store.acquire([charge("a", burst=2)])).allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key", ""),
        ("rate", 0),
        ("rate", float("nan")),
        ("burst", -1),
        ("burst", True),
        ("cost", float("inf")),
        ("cost", "1"),
    ],
)
def test_a_bad_charge_raises_config_error_naming_the_field(field: str, value: object) -> None:
    values: dict[str, object] = {"key": "k", "rate": 1.0, "burst": 1.0, "cost": 1.0}
    values[field] = value
    with pytest.raises(ConfigError, match=f"Charge.{field}"):
        Charge(**values)  # type: ignore[arg-type]


async def test_redis_buckets_expire_once_they_would_be_full_again(
    redis_url: str, redis_prefix: str
) -> None:
    scripts = RedisScripts.from_url(redis_url, prefix=redis_prefix)
    store = RedisRateLimitStore(scripts)
    try:
        assert (await store.acquire([charge("a", rate=1, burst=10, cost=5)])).allowed
        ttl_ms = await scripts.client.pttl(scripts.key("ratelimit", "a"))
        assert 5_000 < ttl_ms <= 6_000  # five seconds to refill, plus one of margin
        await store.adjust([charge("a", rate=1, burst=10, cost=-5)])
        assert not await scripts.client.exists(scripts.key("ratelimit", "a"))
    finally:
        await scripts.client.delete(scripts.key("ratelimit", "a"))
        await scripts.aclose()


async def test_the_memory_store_forgets_full_buckets() -> None:
    clock = FakeClock()
    store = MemoryRateLimitStore(clock)
    for index in range(1_000):
        assert (await store.acquire([charge(f"k{index}", rate=100, burst=10)])).allowed
    await store.adjust([charge("k0", rate=100, burst=10, cost=-1)])
    assert len(store._tats) == 999  # a refund that fills a bucket forgets it at once
    clock.advance(1)  # every bucket is full again
    for index in range(30):
        assert (await store.acquire([charge(f"new{index}", rate=100, burst=10)])).allowed
    # The sweep after 1024 writes dropped the full buckets; the new ones are still in use.
    assert set(store._tats) == {f"new{index}" for index in range(30)}
