"""`RedisAdmissionStore.admit`: limiter charges and a budget reservation, in one step or not at all.

Buckets in these tests regain a token every ~11 days (`RATE`), so the Redis server's clock,
which no test can move, never changes an answer between two calls.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from onionskin.stores._redis import RedisScripts
from onionskin.stores.budget import BudgetLine, Refusal
from onionskin.stores.rate_limit import Charge
from onionskin.stores.redis_admission import RedisAdmissionStore

RATE = 1e-6
TTL = 600.0


class Commands:
    """Every command a Redis client sends, counted where redis-py sends it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
        self.sent: list[str] = []
        original: Callable[..., Awaitable[Any]] = client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.sent.append(str(args[0]))
            return await original(*args, **options)

        monkeypatch.setattr(client, "execute_command", counted)


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisAdmissionStore]:
    admission = RedisAdmissionStore(RedisScripts.from_url(redis_url, prefix=redis_prefix))
    yield admission
    client = admission.scripts.client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await admission.aclose()


def charge(key: str, *, burst: float = 2, cost: float = 1) -> Charge:
    return Charge(key=key, rate=RATE, burst=burst, cost=cost)


def line(key: str, limit: int | None = 100) -> BudgetLine:
    return BudgetLine(key, limit)


async def raw(store: RedisAdmissionStore, *keys: str) -> list[Any]:
    """What Redis holds under these bucket keys (None: no key, a full bucket)."""
    return [await store.scripts.client.get(store.scripts.key("ratelimit", k)) for k in keys]


async def test_an_admission_takes_every_charge_and_holds_every_line(
    store: RedisAdmissionStore,
) -> None:
    admission, refusal = await store.admit(
        [charge("tenant:a:calls"), charge("global:calls", cost=2, burst=4)],
        "r1",
        [line("a:run:1"), line("a:tenant:day")],
        30,
        TTL,
    )
    assert (admission.allowed, refusal) == (True, None)
    assert None not in await raw(store, "tenant:a:calls", "global:calls")
    assert [await store.budget.held(k) for k in ("a:run:1", "a:tenant:day")] == [30, 30]
    # The reservation is the budget store's own: it settles like any other.
    assert await store.budget.settle("r1", 12) == {"a:run:1": 12, "a:tenant:day": 12}
    assert await store.budget.held("a:run:1") == 0
    assert await store.budget.ledger("a:tenant:day") == {"r1": 12}


async def test_a_limiter_refusal_reserves_nothing_and_moves_no_bucket(
    store: RedisAdmissionStore,
) -> None:
    await store.limits.acquire([charge("tenant:a:calls", burst=1)])
    before = await raw(store, "tenant:a:calls")

    admission, refusal = await store.admit(
        [charge("global:calls"), charge("tenant:a:calls", burst=1)], "r1", [line("a:run")], 30, TTL
    )

    assert not admission.allowed
    assert admission.key_that_refused == "tenant:a:calls"
    assert admission.retry_after > 0
    assert refusal is None
    assert await raw(store, "tenant:a:calls", "global:calls") == [*before, None]
    assert await store.budget.held("a:run") == 0
    assert await store.budget.release("r1") is False  # no reservation was recorded


async def test_a_budget_refusal_moves_no_bucket_and_holds_nothing(
    store: RedisAdmissionStore,
) -> None:
    assert (await store.admit([charge("b1")], "r1", [line("run"), line("day", 50)], 30, TTL))[
        1
    ] is None
    before = await raw(store, "b1")

    admission, refusal = await store.admit(
        [charge("b1"), charge("b2")], "r2", [line("run"), line("day", 50)], 30, TTL
    )

    assert admission.allowed  # the limiter would have admitted it ...
    assert refusal == Refusal(key="day", limit_micros=50, spent_micros=0, held_micros=30)
    assert await raw(store, "b1", "b2") == [*before, None]  # ... and was not charged
    assert [await store.budget.held(k) for k in ("run", "day")] == [30, 30]
    assert await store.budget.release("r2") is False


async def test_the_limiter_answers_first_when_both_would_refuse(
    store: RedisAdmissionStore,
) -> None:
    await store.limits.acquire([charge("b1", burst=1)])
    admission, refusal = await store.admit([charge("b1", burst=1)], "r1", [line("run", 0)], 1, TTL)
    assert (admission.allowed, admission.key_that_refused, refusal) == (False, "b1", None)


async def test_a_charge_that_never_fits_is_refused_for_good(store: RedisAdmissionStore) -> None:
    admission, _ = await store.admit([charge("b1", burst=2, cost=3)], "r1", [line("run")], 1, TTL)
    assert (admission.allowed, admission.retry_after) == (False, float("inf"))


async def test_an_id_already_held_is_admitted_again_without_a_second_hold(
    store: RedisAdmissionStore,
) -> None:
    for _ in range(2):
        assert (await store.admit([charge("b1", burst=3)], "r1", [line("run")], 30, TTL))[1] is None
    assert await store.budget.held("run") == 30  # as RedisBudgetStore.reserve does
    admission, _ = await store.admit([charge("b1", burst=3)], "r2", [line("run")], 1, TTL)
    assert admission.allowed  # the third token: each admission took one
    admission, _ = await store.admit([charge("b1", burst=3)], "r3", [line("run")], 1, TTL)
    assert not admission.allowed


async def test_an_unsettled_hold_lapses_after_its_ttl(store: RedisAdmissionStore) -> None:
    await store.admit([charge("b1")], "r1", [line("run", 40)], 30, 0.04)
    assert await store.budget.held("run") == 30
    await asyncio.sleep(0.06)  # Redis keeps its own time: a few real milliseconds
    assert await store.budget.held("run") == 0
    assert (await store.admit([charge("b1")], "r2", [line("run", 40)], 30, TTL))[1] is None


async def test_every_answer_is_one_round_trip(
    store: RedisAdmissionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.admit([charge("warm")], "r0", [line("warm")], 1, TTL)  # loads the script
    commands = Commands(monkeypatch, store.scripts.client)
    answers = [
        await store.admit([charge("b1", burst=1), charge("b2")], "r1", [line("run")], 60, TTL),
        await store.admit([charge("b1", burst=1)], "r2", [line("run")], 1, TTL),  # limiter
        await store.admit([charge("b2")], "r3", [line("run")], 50, TTL),  # budget
    ]
    shapes = [(admission.allowed, refusal is None) for admission, refusal in answers]
    assert shapes == [(True, True), (False, True), (True, False)]
    assert commands.sent == ["EVALSHA"] * 3


@pytest.mark.parametrize(
    ("charges", "lines", "amount", "problem"),
    [
        ([charge("b1"), charge("b1")], [line("run")], 1, "charged twice"),
        ([charge("b1", cost=-1)], [line("run")], 1, "costs >= 0"),
        ([charge("b1")], [], 1, "at least one BudgetLine"),
        ([charge("b1")], [line("run"), line("run")], 1, "distinct keys"),
        ([charge("b1")], [line("run")], -1, "micro-dollars >= 0"),
    ],
)
async def test_a_malformed_admission_is_refused_before_anything_is_sent(
    store: RedisAdmissionStore,
    monkeypatch: pytest.MonkeyPatch,
    charges: list[Charge],
    lines: list[BudgetLine],
    amount: int,
    problem: str,
) -> None:
    commands = Commands(monkeypatch, store.scripts.client)
    with pytest.raises(ValueError, match=problem):
        await store.admit(charges, "r1", lines, amount, TTL)
    assert commands.sent == []


# --- the same answers as the two stores one after the other ------------------------------------


async def separately(
    store: RedisAdmissionStore,
    charges: list[Charge],
    rid: str,
    lines: list[BudgetLine],
    amount: int,
) -> tuple[str, Any]:
    """The limiter, then the budget, each its own store; a budget refusal gives tokens back."""
    admission = await store.limits.acquire(charges)
    if not admission.allowed:
        return "limited", admission.key_that_refused
    refusal = await store.budget.reserve(rid, lines, amount, TTL)
    if refusal is not None:
        await store.limits.adjust([Charge(**{**vars_of(c), "cost": -c.cost}) for c in charges])
        return "over budget", refusal
    return "admitted", None


def vars_of(charge_: Charge) -> dict[str, Any]:
    return {"key": charge_.key, "rate": charge_.rate, "burst": charge_.burst, "cost": charge_.cost}


async def jointly(
    store: RedisAdmissionStore,
    charges: list[Charge],
    rid: str,
    lines: list[BudgetLine],
    amount: int,
) -> tuple[str, Any]:
    admission, refusal = await store.admit(charges, rid, lines, amount, TTL)
    if not admission.allowed:
        return "limited", admission.key_that_refused
    return ("over budget", refusal) if refusal is not None else ("admitted", None)


@pytest.mark.parametrize("seed", range(3))
async def test_the_joint_admission_answers_as_the_two_stores_in_turn(
    redis_url: str, redis_prefix: str, seed: int
) -> None:
    rng = random.Random(seed)
    stores = [
        RedisAdmissionStore(RedisScripts.from_url(redis_url, prefix=f"{redis_prefix}:{side}"))
        for side in ("joint", "apart")
    ]
    bursts = {"b1": 3.0, "b2": 5.0, "b3": 8.0}
    limits = {"run": 400, "day": 700, "free": None}
    answers: dict[str, list[tuple[str, Any]]] = {"joint": [], "apart": []}
    admitted: list[str] = []
    try:
        for step in range(60):
            keys = rng.sample(sorted(bursts), rng.randint(1, 3))
            charges = [charge(k, burst=bursts[k], cost=rng.choice([0, 1, 2])) for k in keys]
            lines = [line(k, limits[k]) for k in rng.sample(sorted(limits), rng.randint(1, 3))]
            amount, rid = rng.randint(0, 90), f"r{step}"
            joint = await jointly(stores[0], charges, rid, lines, amount)
            apart = await separately(stores[1], charges, rid, lines, amount)
            answers["joint"].append(joint)
            answers["apart"].append(apart)
            if joint[0] == "admitted":
                admitted.append(rid)
            if admitted and rng.random() < 0.4:  # settle or release an earlier call
                done = admitted.pop(rng.randrange(len(admitted)))
                actual = rng.randint(0, 90)
                for one in stores:
                    await (one.budget.settle(done, actual) if actual else one.budget.release(done))
        assert answers["joint"] == answers["apart"]
        assert {kind for kind, _ in answers["joint"]} == {"admitted", "limited", "over budget"}
        for key in limits:
            spent = [(await s.budget.spent(key), await s.budget.held(key)) for s in stores]
            assert spent[0] == spent[1]
            ledgers = [await s.budget.ledger(key) for s in stores]
            assert ledgers[0] == ledgers[1]
    finally:
        client = stores[0].scripts.client
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        if keys:
            await client.delete(*keys)
        for one in stores:
            await one.aclose()
