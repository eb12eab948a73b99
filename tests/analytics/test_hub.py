"""LiveHub and the WebSocket exporter: per-tenant fan-out; slow subscribers are dropped."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from onionskin import ConfigError, TenantError
from onionskin.analytics import (
    AnalyticsCoordinator,
    LiveHub,
    WebSocketAnalyticsExporter,
    forward_events,
)
from tests.analytics.conftest import EventFactory


async def test_a_subscriber_receives_only_its_tenants_events(make_event: EventFactory) -> None:
    hub = LiveHub()
    acme, globex, no_tenant = hub.subscribe("acme"), hub.subscribe("globex"), hub.subscribe(None)

    delivered = hub.publish(
        [make_event("acme", n=1), make_event("globex", n=2), make_event(None, n=3)]
    )
    hub.publish([make_event("acme", n=4)])
    hub.close()

    assert delivered == 3
    assert [(e.tenant_id, e.data["n"]) async for e in acme] == [("acme", 1), ("acme", 4)]
    assert [(e.tenant_id, e.data["n"]) async for e in globex] == [("globex", 2)]
    assert [(e.tenant_id, e.data["n"]) async for e in no_tenant] == [(None, 3)]


async def test_events_of_a_tenant_nobody_watches_go_nowhere(make_event: EventFactory) -> None:
    hub = LiveHub()
    assert hub.publish([make_event("acme")]) == 0
    assert hub.subscriber_count("acme") == 0


async def test_a_slow_subscriber_is_dropped_while_a_fast_one_keeps_receiving(
    make_event: EventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = LiveHub(max_queue=3)
    slow, fast = hub.subscribe("acme"), hub.subscribe("acme")

    received = []
    with caplog.at_level(logging.WARNING, logger="onionskin.analytics"):
        for n in range(10):
            hub.publish([make_event("acme", n=n)])  # never waits, whoever is slow
            received.append((await anext(fast)).data["n"])

    assert received == list(range(10))
    assert slow.dropped
    assert slow.closed
    assert not fast.dropped
    assert not fast.closed
    assert [event async for event in slow] == []  # ends at once: what it held was stale
    assert hub.dropped == 1
    assert hub.subscriber_count("acme") == 1
    assert "fell 3 events behind" in caplog.text


async def test_a_closed_subscription_still_reads_what_was_queued(
    make_event: EventFactory,
) -> None:
    hub = LiveHub()
    async with hub.subscribe("acme") as events:
        hub.publish([make_event("acme", n=1), make_event("acme", n=2)])
    hub.publish([make_event("acme", n=3)])

    assert [e.data["n"] async for e in events] == [1, 2]
    assert not events.dropped
    assert hub.subscriber_count("acme") == 0


async def test_next_batch_waits_for_events_and_takes_what_is_there(
    make_event: EventFactory,
) -> None:
    hub = LiveHub()
    events = hub.subscribe("acme")
    waiting = asyncio.create_task(events.next_batch(max_items=2))
    await asyncio.sleep(0)
    assert not waiting.done()

    hub.publish([make_event("acme", n=n) for n in range(3)])

    assert [e.data["n"] for e in await waiting] == [0, 1]
    assert [e.data["n"] for e in await events.next_batch()] == [2]
    events.close()
    assert await events.next_batch() == []


@pytest.mark.parametrize("tenant", ["", "a:b", "../x", "*", 42])
def test_subscribing_to_a_malformed_tenant_is_refused(tenant: object) -> None:
    hub = LiveHub()
    with pytest.raises(TenantError, match="tenant_id"):
        hub.subscribe(tenant)  # type: ignore[arg-type]  # the point: bad input
    assert hub.subscriber_count(None) == 0


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_queue_sizes_must_be_whole_numbers(size: object) -> None:
    with pytest.raises(ConfigError, match="max_queue"):
        LiveHub(max_queue=size)  # type: ignore[arg-type]  # the point: bad input
    with pytest.raises(ConfigError, match="max_queue"):
        LiveHub().subscribe("acme", max_queue=size)  # type: ignore[arg-type]


async def test_the_websocket_exporter_publishes_into_its_hub(make_event: EventFactory) -> None:
    exporter = WebSocketAnalyticsExporter()
    events = exporter.hub.subscribe("acme")
    coordinator = AnalyticsCoordinator([exporter])
    coordinator.record(make_event("acme", n=1))
    coordinator.record(make_event("globex", n=2))
    await coordinator.flush()

    assert [e.data["n"] for e in await events.next_batch()] == [1]
    assert coordinator.stats()[0].exported == 2
    with pytest.raises(ConfigError, match=r"WebSocketAnalyticsExporter\.hub"):
        WebSocketAnalyticsExporter("ws://localhost:8765")  # type: ignore[arg-type]


async def test_forward_events_sends_json_arrays_until_the_subscription_ends(
    make_event: EventFactory,
) -> None:
    hub = LiveHub()
    events = hub.subscribe("acme")
    sent: list[str] = []

    async def send(message: str) -> None:
        sent.append(message)
        if len(sent) == 1:
            hub.publish([make_event("acme", n=3)])
        else:
            events.close()

    hub.publish([make_event("acme", n=1), make_event("acme", n=2)])
    await asyncio.wait_for(forward_events(events, send), 5)

    batches = [[e["data"]["n"] for e in json.loads(message)] for message in sent]
    assert batches == [[1, 2], [3]]
    assert json.loads(sent[0])[0]["type"] == "custom"
    assert not events.dropped


async def test_forward_events_drops_a_client_whose_send_stalls(make_event: EventFactory) -> None:
    hub = LiveHub()
    events = hub.subscribe("acme")
    never = asyncio.Event()

    async def stalled_send(message: str) -> None:
        await never.wait()

    hub.publish([make_event("acme")])
    await asyncio.wait_for(forward_events(events, stalled_send, send_timeout=0.01), 5)

    assert events.dropped
    assert hub.dropped == 1
    assert hub.subscriber_count("acme") == 0


async def test_forward_events_refuses_bad_options() -> None:
    events = LiveHub().subscribe("acme")

    async def send(message: str) -> None:
        raise AssertionError("nothing should be sent")

    with pytest.raises(ConfigError, match="max_batch"):
        await forward_events(events, send, max_batch=0)
    with pytest.raises(ConfigError, match="send_timeout"):
        await forward_events(events, send, send_timeout=-1)
    assert not events.closed
