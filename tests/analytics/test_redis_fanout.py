"""RedisFanout: two "workers" in one process, each with its own hub and its own fan-out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from onionskin import ConfigError, StoreError
from onionskin.analytics import AnalyticsCoordinator, AnalyticsEvent, LiveHub, Subscription
from onionskin.analytics.redis_fanout import RedisFanout
from onionskin.testing import FakeClock
from tests.analytics.conftest import EventFactory
from tests.conftest import DOWN_REDIS_URL

Worker = tuple[LiveHub, RedisFanout]


@pytest.fixture
async def workers(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[[], Worker]]:
    """`make()` -> (hub, started fan-out), all on this test's own channel prefix."""
    started: list[RedisFanout] = []

    def make() -> Worker:
        hub = LiveHub()
        fanout = RedisFanout(redis_url, hub, channel_prefix=redis_prefix)
        started.append(fanout)
        return hub, fanout

    yield make
    for fanout in started:
        await fanout.aclose()


async def take(events: Subscription, count: int) -> list[AnalyticsEvent]:
    taken: list[AnalyticsEvent] = []
    async with asyncio.timeout(5):
        while len(taken) < count:
            taken.extend(await events.next_batch(count - len(taken)))
    return taken


async def test_a_subscriber_on_one_worker_sees_runs_on_another(
    workers: Callable[[], Worker], make_event: EventFactory
) -> None:
    (_hub1, fanout1), (hub2, fanout2) = workers(), workers()
    await fanout1.start()
    await fanout2.start()
    acme_on_2, globex_on_2 = hub2.subscribe("acme"), hub2.subscribe("globex")

    result = await fanout1.export(
        [make_event("acme", n=1), make_event("globex", n=2), make_event("acme", n=3)]
    )
    # Messages arrive in order: a leaked globex event would come before this one.
    await fanout1.export([make_event("acme", n=4)])

    assert (result.success, result.exported_count) == (True, 3)
    assert [e.data["n"] for e in await take(acme_on_2, 3)] == [1, 3, 4]
    assert [e.data["n"] for e in await take(globex_on_2, 1)] == [2]


async def test_a_worker_delivers_its_own_events_once(
    workers: Callable[[], Worker], make_event: EventFactory
) -> None:
    (hub1, fanout1), (_hub2, fanout2) = workers(), workers()
    await fanout1.start()
    await fanout2.start()
    local = hub1.subscribe("acme")

    await fanout1.export([make_event("acme", n=1)])
    # Published after worker 1's own message: once it arrives, any echo would have too.
    await fanout2.export([make_event("acme", n=2)])

    assert [e.data["n"] for e in await take(local, 2)] == [1, 2]  # an echo: [1, 1]


async def test_the_coordinator_feeds_other_workers_through_the_fanout(
    workers: Callable[[], Worker], make_event: EventFactory
) -> None:
    (_, fanout1), (hub2, fanout2) = workers(), workers()
    await fanout1.start()
    await fanout2.start()
    watching = hub2.subscribe("acme")
    coordinator = AnalyticsCoordinator([fanout1])

    coordinator.record(make_event("acme", type="token_usage", total_tokens=7))

    [event] = await take(watching, 1)
    assert (event.type, event.data["total_tokens"]) == ("token_usage", 7)


async def test_malformed_and_cross_tenant_messages_are_ignored(
    workers: Callable[[], Worker],
    make_event: EventFactory,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (hub, fanout), (_, other) = workers(), workers()
    await fanout.start()
    acme = hub.subscribe("acme")
    client = redis.Redis.from_url(redis_url)
    try:
        await client.publish(f"{redis_prefix}:acme", b"not json")
        globex_event = make_event("globex", n=666).model_dump_json()
        smuggled = '{"origin": "intruder", "events": [' + globex_event + "]}"
        await client.publish(f"{redis_prefix}:acme", smuggled)
    finally:
        await client.aclose()
    with caplog.at_level(logging.WARNING, logger="onionskin.analytics"):
        await other.export([make_event("acme", n=1)])
        [event] = await take(acme, 1)

    assert (event.tenant_id, event.data["n"]) == ("acme", 1)
    assert "ignored a malformed message" in caplog.text
    assert "ignored 1 events" in caplog.text


async def test_without_redis_start_fails_and_export_reports_it(
    make_event: EventFactory, redis_prefix: str
) -> None:
    hub = LiveHub()
    local = hub.subscribe("acme")
    fanout = RedisFanout(DOWN_REDIS_URL, hub, channel_prefix=redis_prefix)
    try:
        with pytest.raises(StoreError, match=r"127\.0\.0\.1:1"):
            await fanout.start()
        result = await fanout.export([make_event("acme", n=1)])
    finally:
        await fanout.aclose()

    assert not result.success
    assert result.exported_count == 0
    assert result.error is not None
    assert "127.0.0.1:1" in result.error
    assert [e.data["n"] for e in await local.next_batch()] == [1]  # local clients still see it


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"channel_prefix": "analytics:*"}, "channel_prefix"),
        ({"channel_prefix": ""}, "channel_prefix"),
        ({"worker_id": " "}, "worker_id"),
        ({"hub": None}, "hub"),
        ({"redis_url": ""}, "redis_url"),
        ({"redis_url": "http://example.com"}, "redis_url"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"redis_url": DOWN_REDIS_URL, "hub": LiveHub(), **options}
    with pytest.raises(ConfigError, match=f"RedisFanout.{field}"):
        RedisFanout(**arguments)  # type: ignore[arg-type]  # the point: bad input


async def test_the_listener_resubscribes_after_losing_its_connection(
    redis_url: str, redis_prefix: str, make_event: EventFactory
) -> None:
    clock = FakeClock()
    hub = LiveHub()
    listening = RedisFanout(redis_url, hub, channel_prefix=redis_prefix, clock=clock)
    sender = RedisFanout(redis_url, LiveHub(), channel_prefix=redis_prefix)
    admin = redis.Redis.from_url(redis_url)
    acme = hub.subscribe("acme")
    try:
        await listening.start()
        name = f"onionskin-analytics:{listening.worker_id}"
        killed = [c for c in await admin.client_list() if c["name"] == name and c["psub"] != "0"]
        assert len(killed) == 1
        await admin.client_kill_filter(_id=killed[0]["id"])

        # Pub/sub is at-most-once: what is sent while it reconnects is lost, so keep sending.
        async with asyncio.timeout(5):
            while not (received := await _poll(acme)):
                await sender.export([make_event("acme", n=1)])
                await asyncio.sleep(0.01)
        now = [c for c in await admin.client_list() if c["name"] == name and c["psub"] != "0"]
    finally:
        await admin.aclose()
        await sender.aclose()
        await listening.aclose()

    assert {e.data["n"] for e in received} == {1}
    assert clock.sleeps == [0.5]  # it noticed, waited on its clock, then resubscribed
    assert [c["id"] for c in now] != [killed[0]["id"]]
    assert len(now) == 1


async def _poll(events: Subscription) -> list[AnalyticsEvent]:
    """What `events` holds now, without waiting for more."""
    try:
        return await asyncio.wait_for(events.next_batch(), 0.05)
    except TimeoutError:
        return []
