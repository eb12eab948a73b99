"""One contract for every budget store: the memory store and Redis behave the same.

Memory time is a FakeClock; Redis keeps time by its own server clock, so the two expiry
tests wait a few real milliseconds there (a tenth of a second in all).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from onionskin.pricing import from_micros
from onionskin.stores.budget import BudgetLine, BudgetStore, MemoryBudgetStore, Refusal
from onionskin.testing import FakeClock


@dataclass
class Backend:
    """A store under test and a way to let time pass for it."""

    store: BudgetStore
    clock: FakeClock | None
    short: float
    """A ttl short enough to wait out: FakeClock seconds, or real ones on Redis."""

    async def wait_past(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.advance(seconds * 1.5)
        else:
            await asyncio.sleep(seconds * 1.5)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()
        yield Backend(MemoryBudgetStore(clock=clock), clock, short=5.0)
        return
    from onionskin.stores.redis_budget import RedisBudgetStore

    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    store = RedisBudgetStore.from_url(url, prefix=prefix)
    try:
        yield Backend(store, None, short=0.04)
    finally:
        client = store.scripts.client
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await store.aclose()


def line(key: str, limit: int | None = None, keep_for: float | None = None) -> BudgetLine:
    return BudgetLine(key, limit, keep_for)


async def test_reserve_holds_within_the_limit_and_refuses_beyond_it(backend: Backend) -> None:
    store = backend.store
    assert await store.reserve("r1", [line("t:run", 100)], 60, ttl=60) is None
    assert await store.held("t:run") == 60

    refusal = await store.reserve("r2", [line("t:run", 100)], 41, ttl=60)

    assert refusal == Refusal(key="t:run", limit_micros=100, spent_micros=0, held_micros=60)
    assert await store.held("t:run") == 60
    assert await store.reserve("r3", [line("t:run", 100)], 40, ttl=60) is None  # exactly full


async def test_reserve_is_all_or_nothing_across_lines(backend: Backend) -> None:
    store = backend.store
    await store.reserve("r0", [line("t:session", 50)], 30, ttl=60)
    lines = [line("t:run", 1_000), line("t:session", 50), line("t:tenant", 1_000)]

    refusal = await store.reserve("r1", lines, 25, ttl=60)

    assert refusal is not None
    assert (refusal.key, refusal.held_micros) == ("t:session", 30)
    assert [await store.held(key) for key in ("t:run", "t:session", "t:tenant")] == [0, 30, 0]


async def test_settle_charges_the_actual_once_and_ledgers_it(backend: Backend) -> None:
    store = backend.store
    lines = [line("t:run", 100), line("t:tenant")]
    await store.reserve("call-1", lines, 80, ttl=60)

    totals = await store.settle("call-1", 35)
    again = await store.settle("call-1", 35)

    assert totals == {"t:run": 35, "t:tenant": 35}
    assert again is None
    assert await store.release("call-1") is False
    for key in ("t:run", "t:tenant"):
        assert (await store.spent(key), await store.held(key)) == (35, 0)
        assert await store.ledger(key) == {"call-1": 35}


async def test_release_frees_the_hold_without_charging(backend: Backend) -> None:
    store = backend.store
    await store.reserve("call-1", [line("t:run", 100)], 100, ttl=60)

    assert await store.release("call-1") is True
    assert await store.release("call-1") is False
    assert await store.settle("call-1", 100) is None  # ended: a late settle charges nothing
    assert (await store.spent("t:run"), await store.held("t:run")) == (0, 0)
    assert await store.reserve("call-2", [line("t:run", 100)], 100, ttl=60) is None


async def test_a_reservation_id_is_held_once(backend: Backend) -> None:
    store = backend.store
    for _ in range(2):
        assert await store.reserve("call-1", [line("t:run", 100)], 70, ttl=60) is None
    assert await store.held("t:run") == 70


async def test_spend_counts_against_later_reservations(backend: Backend) -> None:
    store = backend.store
    await store.reserve("a", [line("t:run", 100)], 90, ttl=60)
    await store.settle("a", 90)

    refusal = await store.reserve("b", [line("t:run", 100)], 11, ttl=60)

    assert refusal is not None
    assert (refusal.spent_micros, refusal.held_micros) == (90, 0)


async def test_an_unsettled_hold_lapses_after_its_ttl(backend: Backend) -> None:
    store = backend.store
    await store.reserve("stuck", [line("t:run", 100)], 100, ttl=backend.short)
    assert await store.reserve("next", [line("t:run", 100)], 1, ttl=60) is not None

    await backend.wait_past(backend.short)

    assert await store.held("t:run") == 0
    assert await store.reserve("next", [line("t:run", 100)], 100, ttl=60) is None


async def test_a_late_settle_after_the_hold_lapsed_still_charges(backend: Backend) -> None:
    store = backend.store
    await store.reserve("slow", [line("t:run", 100)], 50, ttl=backend.short)
    await backend.wait_past(backend.short)

    assert await store.settle("slow", 40) == {"t:run": 40}
    assert (await store.spent("t:run"), await store.held("t:run")) == (40, 0)


async def test_a_line_is_forgotten_after_keep_for(backend: Backend) -> None:
    store = backend.store
    await store.reserve("a", [line("t:day", 100, keep_for=backend.short)], 10, ttl=60)
    await store.settle("a", 10)
    await store.reserve("b", [line("t:total", 100)], 10, ttl=60)
    await store.settle("b", 10)

    await backend.wait_past(backend.short)

    assert (await store.spent("t:day"), await store.ledger("t:day")) == (0, {})
    assert await store.spent("t:total") == 10


async def test_a_line_without_limit_tracks_but_never_refuses(backend: Backend) -> None:
    store = backend.store
    assert await store.reserve("a", [line("t:tenant")], 10**12, ttl=60) is None
    await store.settle("a", 10**12)
    assert await store.spent("t:tenant") == 10**12


async def test_an_alert_is_claimed_once_per_line_and_threshold(backend: Backend) -> None:
    store = backend.store
    claims = await asyncio.gather(*(store.claim_alert("t:run", "0.8") for _ in range(20)))

    assert claims.count(True) == 1
    assert await store.claim_alert("t:run", "0.5") is True
    assert await store.claim_alert("t:other", "0.8") is True


async def test_concurrent_reservations_never_overdraw(backend: Backend) -> None:
    store = backend.store

    async def call(index: int) -> bool:
        admitted = await store.reserve(f"c{index}", [line("t:run", 1_000)], 70, ttl=60) is None
        if admitted:
            await store.settle(f"c{index}", 70)
        return admitted

    admitted = await asyncio.gather(*(call(index) for index in range(40)))

    assert admitted.count(True) == 14  # 14 * 70 = 980 <= 1000 < 15 * 70
    assert await store.spent("t:run") == 980
    assert len(await store.ledger("t:run")) == 14


async def test_micro_dollar_sums_are_exact(backend: Backend) -> None:
    store = backend.store

    async def call(index: int) -> None:
        await store.reserve(f"c{index}", [line("t:run")], 123, ttl=60)
        await store.settle(f"c{index}", 123)

    for batch in range(10):
        await asyncio.gather(*(call(batch * 100 + index) for index in range(100)))

    assert from_micros(await store.spent("t:run")) == Decimal("0.123")


@pytest.mark.parametrize(
    ("lines", "amount", "ttl"),
    [
        ([], 10, 60),
        (["not a line"], 10, 60),
        ([line("t:a"), line("t:a")], 10, 60),
        ([line("t:a")], -1, 60),
        ([line("t:a")], 1.5, 60),
        ([line("t:a")], True, 60),
        ([line("t:a")], 10, 0),
    ],
)
async def test_a_malformed_reservation_is_refused_and_changes_nothing(
    backend: Backend, lines: list[Any], amount: Any, ttl: float
) -> None:
    with pytest.raises(ValueError, match=r"reservation|micro-dollars"):
        await backend.store.reserve("bad", lines, amount, ttl=ttl)
    assert await backend.store.held("t:a") == 0
    assert await backend.store.release("bad") is False


async def test_a_negative_actual_is_refused_and_the_hold_stays(backend: Backend) -> None:
    store = backend.store
    await store.reserve("a", [line("t:run", 100)], 10, ttl=60)
    with pytest.raises(ValueError, match="micro-dollars"):
        await store.settle("a", -5)
    assert (await store.held("t:run"), await store.spent("t:run")) == (10, 0)
