"""Live analytics for WebSocket clients (seed 003 recipe 7), on the server's own socket.

Seed 003's exporter runs a WebSocket server of its own and broadcasts every event to
every client. Here the exporter publishes into a [LiveHub][onionskin.analytics.hub.LiveHub];
the server's authenticated WebSocket route subscribes for its client's tenant and calls
[forward_events][onionskin.analytics.websocket.forward_events], which sends JSON arrays of
events as the seed's dashboard reads them (`JSON.parse(event.data).forEach(...)`). A client
that cannot keep up is dropped, never awaited by a run. With several server processes,
export through [RedisFanout][onionskin.analytics.redis_fanout.RedisFanout] instead, which
also delivers to the local hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from onionskin.analytics._checks import seconds, whole_number
from onionskin.analytics.events import AnalyticsEvent
from onionskin.analytics.exporter import BaseAnalyticsExporter, ExportResult
from onionskin.analytics.hub import LiveHub, Subscription
from onionskin.core.errors import ConfigError


class WebSocketAnalyticsExporter(BaseAnalyticsExporter):
    """Publishes events into a live hub that WebSocket routes subscribe to (seed 003).

    Args:
        hub: the hub the server's WebSocket route reads; a new one by default.
    """

    def __init__(self, hub: LiveHub | None = None) -> None:
        given: object = hub  # object: checked here, whatever the caller passed
        if given is not None and not isinstance(given, LiveHub):
            raise ConfigError(f"WebSocketAnalyticsExporter.hub must be a LiveHub, got {given!r}")
        self.hub = LiveHub() if hub is None else hub

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Hand `events` to the hub's subscribers of each event's tenant; never waits."""
        self.hub.publish(events)
        return ExportResult(success=True, exported_count=len(events))


def events_json(events: Sequence[AnalyticsEvent]) -> str:
    """`events` as one JSON array: the message a dashboard client receives."""
    return "[" + ",".join(event.model_dump_json() for event in events) + "]"


async def forward_events(
    subscription: Subscription,
    send: Callable[[str], Awaitable[object]],
    *,
    max_batch: int = 100,
    send_timeout: float = 10.0,
) -> None:
    """Send the subscription's events to one client, a JSON array per message, until it ends.

    Events that arrive while a send is in progress go in the next message, so a client
    gets as many messages as it can take and no more (seed 003: "limit client message
    frequency"). A send that takes longer than `send_timeout` seconds drops the client
    (`subscription.dropped` becomes True); so does falling `max_queue` events behind.
    The caller closes the socket afterwards (code 1013, "try again later", when dropped).

    Raises:
        ConfigError: `max_batch` or `send_timeout` is out of range.
    """
    whole_number("forward_events max_batch", max_batch)
    seconds("forward_events send_timeout", send_timeout)
    try:
        while batch := await subscription.next_batch(max_batch):
            try:
                async with asyncio.timeout(send_timeout):
                    await send(events_json(batch))
            except TimeoutError:
                subscription.drop(f"a send took longer than {send_timeout} s")
                return
    finally:
        subscription.close()
