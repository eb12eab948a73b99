"""`LiveHub`: live analytics events fanned out to subscribers, each seeing one tenant only.

The server's WebSocket route subscribes for the tenant its client authenticated as and
forwards what arrives; exporters publish into the hub. Publishing never waits for a
subscriber: each has a bounded queue, and one whose queue is full is too slow to follow
the live stream, so it is dropped (its iteration ends with `dropped` set and the route
closes the socket) rather than slowing the runs that publish (seed 003: "handle client
disconnections gracefully").

One hub serves one event loop: publish and subscribe from that loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from onionskin.analytics._checks import SAFE_ID, whole_number
from onionskin.analytics.events import AnalyticsEvent
from onionskin.core.errors import TenantError

logger = logging.getLogger("onionskin.analytics")


class Subscription:
    """One subscriber's view of a tenant's live events: iterate it, or take `next_batch()`.

    Ends when closed (by its owner or the hub) after the events already queued, or at once
    when the hub dropped it for falling behind (`dropped` is then True).
    """

    def __init__(self, hub: LiveHub, tenant_id: str | None, max_queue: int) -> None:
        self.tenant_id = tenant_id
        """The tenant whose events it receives (None: runs without a tenant)."""
        self.max_queue = max_queue
        self.dropped = False
        """True when the hub dropped it because its queue was full."""
        self._hub = hub
        self._items: deque[AnalyticsEvent] = deque()
        self._ended = False
        self._wakeup = asyncio.Event()

    @property
    def closed(self) -> bool:
        """True once it receives nothing more (closed or dropped)."""
        return self._ended

    def _offer(self, event: AnalyticsEvent) -> bool:
        """Queue `event`; False when the queue is full (the hub then drops the subscriber)."""
        if len(self._items) >= self.max_queue:
            return False
        self._items.append(event)
        self._wakeup.set()
        return True

    def _end(self) -> None:
        self._ended = True
        self._wakeup.set()

    def drop(self, reason: str) -> None:
        """End it at once for falling behind: queued events are discarded, `dropped` is set.

        The hub calls it when the queue is full; a sender calls it when the client is slow.
        """
        if self._ended:
            return
        self.dropped = True
        self._items.clear()  # stale by now: the client reconnects and starts afresh
        self._hub._remove(self)
        self._hub.dropped += 1
        self._end()
        logger.warning("analytics subscriber of tenant %r dropped: %s", self.tenant_id, reason)

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        if not self._ended:
            self._hub._remove(self)
            self._end()

    async def _wait(self) -> bool:
        """Wait for an event; False when none will come."""
        while not self._items:
            if self._ended:
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
        return True

    async def next_batch(self, max_items: int = 100) -> list[AnalyticsEvent]:
        """Wait for at least one event and return up to `max_items`; `[]` once it has ended."""
        whole_number("max_items", max_items)
        if not await self._wait():
            return []
        items = self._items
        return [items.popleft() for _ in range(min(max_items, len(items)))]

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> AnalyticsEvent:
        if not await self._wait():
            raise StopAsyncIteration
        return self._items.popleft()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class LiveHub:
    """Per-tenant fan-out of live analytics events to subscribers with bounded queues.

    Args:
        max_queue: events a subscriber may fall behind by before it is dropped.
    """

    def __init__(self, *, max_queue: int = 1000) -> None:
        self.max_queue = whole_number("LiveHub.max_queue", max_queue)
        self.dropped = 0
        """How many subscribers were dropped for falling behind."""
        self._subscribers: dict[str | None, set[Subscription]] = {}

    def subscribe(self, tenant_id: str | None, *, max_queue: int | None = None) -> Subscription:
        """Receive `tenant_id`'s events from now on (None: the events of runs without a tenant).

        Use it as `async with hub.subscribe(tenant) as events: async for event in events: ...`;
        it is registered at once, so nothing published after this call is missed.

        Raises:
            TenantError: `tenant_id` is not a valid tenant id.
            ConfigError: `max_queue` is not a whole number >= 1.
        """
        claimed: object = tenant_id  # object: the id comes from a client's credentials
        if claimed is not None and (not isinstance(claimed, str) or not SAFE_ID.fullmatch(claimed)):
            raise TenantError(
                "LiveHub.subscribe tenant_id must be a tenant id (letters, digits and _ . @ -) "
                f"or None, got {tenant_id!r}"
            )
        size = self.max_queue if max_queue is None else whole_number("max_queue", max_queue)
        subscription = Subscription(self, tenant_id, size)
        self._subscribers.setdefault(tenant_id, set()).add(subscription)
        return subscription

    def subscriber_count(self, tenant_id: str | None) -> int:
        """How many subscribers `tenant_id` has now."""
        return len(self._subscribers.get(tenant_id, ()))

    def publish(self, events: Iterable[AnalyticsEvent]) -> int:
        """Hand each event to its tenant's subscribers, never waiting; returns the deliveries.

        A subscriber whose queue is full is dropped instead.
        """
        delivered = 0
        subscribers = self._subscribers
        for event in events:
            audience = subscribers.get(event.tenant_id)
            if not audience:
                continue
            for subscription in tuple(audience):
                if subscription._offer(event):
                    delivered += 1
                else:
                    subscription.drop(f"it fell {subscription.max_queue} events behind")
        return delivered

    def _remove(self, subscription: Subscription) -> None:
        audience = self._subscribers.get(subscription.tenant_id)
        if audience is not None:
            audience.discard(subscription)
            if not audience:
                del self._subscribers[subscription.tenant_id]

    def close(self) -> None:
        """End every subscription (each still reads what was queued)."""
        for audience in tuple(self._subscribers.values()):
            for subscription in tuple(audience):
                subscription.close()
