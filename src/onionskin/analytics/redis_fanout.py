"""`RedisFanout`: live analytics across server processes, through Redis pub/sub (seed 003).

Each worker has its own [LiveHub][onionskin.analytics.hub.LiveHub], and its WebSocket
clients are connected to that worker only. A `RedisFanout` exporter delivers a batch to
its local hub at once and publishes it on the tenant's channel (`{prefix}:{tenant_id}`,
`{prefix}:_` for runs without a tenant); every worker's listener, subscribed to
`{prefix}:*`, delivers what other workers published into its own hub. Messages carry the
publishing worker's id, so a worker skips its own (its clients had them already).

Pub/sub is at-most-once: a worker whose listener is reconnecting misses what is published
meanwhile. That suits a live view; totals belong in the cost ledger, not here.

Over 200 lines: the listener (confirmed subscription, reconnection, checks on what it
receives) stays next to the publisher whose messages it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

try:
    import redis.asyncio as redis
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'the analytics fan-out needs the redis package: pip install "onionskin[redis]"'
    ) from error

from onionskin.analytics._checks import channel_name, text
from onionskin.analytics.events import AnalyticsEvent
from onionskin.analytics.exporter import BaseAnalyticsExporter, ExportResult
from onionskin.analytics.hub import LiveHub
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError, StoreError
from onionskin.core.ids import new_id
from onionskin.stores._redis import redis_url as configured_url

logger = logging.getLogger("onionskin.analytics")

NO_TENANT = "_"
"""The channel suffix of runs without a tenant (tenant ids start with a letter or digit)."""
_MAX_DELAY = 30.0


class _Envelope(BaseModel):
    """One published batch: who published it and its events (all of one tenant)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: str = Field(min_length=1, max_length=128)
    events: list[AnalyticsEvent]


def _where(url: str) -> str:
    """`host:port` of `url`: enough for an error message, without a password."""
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


async def _close(pubsub: redis.client.PubSub) -> None:
    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py


class RedisFanout(BaseAnalyticsExporter):
    """Fans analytics out to every worker's hub through Redis pub/sub.

    Use it in place of `WebSocketAnalyticsExporter` when several processes serve clients:
    `async with RedisFanout(url, hub) as fanout:` starts the listener; pass the fan-out to
    the `AnalyticsCoordinator` as an exporter.

    Args:
        redis_url: the Redis server (default: `ONIONSKIN_REDIS_URL`, `REDIS_URL`, local).
        hub: this worker's hub.
        channel_prefix: channels are `{channel_prefix}:{tenant}`; one per deployment.
        worker_id: this worker's id in messages and its Redis client name (default: a new
            unique id).
        clock: waits between reconnection attempts.

    Raises:
        ConfigError: a bad URL, hub, prefix or worker id.
    """

    def __init__(
        self,
        redis_url: str | None,
        hub: LiveHub,
        *,
        channel_prefix: str = "onionskin:analytics",
        worker_id: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        given: tuple[object, ...] = (hub, channel_prefix, worker_id)  # object: checked here
        if not isinstance(given[0], LiveHub):
            raise ConfigError(f"RedisFanout.hub must be a LiveHub, got {hub!r}")
        for field, value in (("channel_prefix", given[1]), ("worker_id", given[2])):
            if value is not None:
                channel_name(f"RedisFanout.{field}", value)
        url = configured_url() if redis_url is None else text("RedisFanout.redis_url", redis_url)
        self.hub = hub
        self.channel_prefix = channel_prefix
        self.worker_id = worker_id or new_id()
        try:
            # No socket timeout: the listener blocks in a read until a message comes. The
            # name tells operators (CLIENT LIST) which worker a connection serves.
            self._client = redis.Redis.from_url(
                url, socket_keepalive=True, client_name=f"onionskin-analytics:{self.worker_id}"
            )
        except ValueError as error:
            raise ConfigError(f"RedisFanout.redis_url is not a Redis URL: {error}") from error
        self._where = _where(url)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def channel(self, tenant_id: str | None) -> str:
        """The channel a tenant's events are published on."""
        return f"{self.channel_prefix}:{NO_TENANT if tenant_id is None else tenant_id}"

    async def start(self) -> None:
        """Subscribe and start the listener; returns once the subscription is active.

        Raises:
            StoreError: Redis could not be reached.
        """
        if self._task is not None and not self._task.done():
            return
        pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._listen(pubsub), name="onionskin-analytics-fanout")

    async def _subscribe(self) -> redis.client.PubSub:
        pubsub = self._client.pubsub()
        try:
            await pubsub.psubscribe(f"{self.channel_prefix}:*")
            # Wait for Redis to confirm, so that start() returning means "listening".
            async with asyncio.timeout(10.0):
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "psubscribe":
                        return pubsub
        except (RedisError, OSError, TimeoutError) as error:
            await _close(pubsub)
            raise StoreError(
                f"analytics fan-out: could not subscribe at Redis {self._where}: "
                f"{type(error).__name__}: {error}"
            ) from error

    async def _listen(self, pubsub: redis.client.PubSub | None) -> None:
        delay = 0.5
        try:
            while True:
                if pubsub is not None:
                    try:
                        async for message in pubsub.listen():
                            if message["type"] == "pmessage":
                                self._deliver(message["channel"], message["data"])
                    except (RedisError, OSError) as error:
                        logger.warning("analytics fan-out lost Redis %s: %r", self._where, error)
                    except Exception:  # a bug here must not end live analytics for good
                        logger.exception("analytics fan-out listener failed; it resubscribes")
                    await _close(pubsub)
                    pubsub = None
                await self._clock.sleep(delay)
                try:
                    pubsub = await self._subscribe()
                    delay = 0.5
                except StoreError as error:
                    delay = min(delay * 2, _MAX_DELAY)
                    logger.warning("%s; retrying in %.1f s", error, delay)
        finally:
            if pubsub is not None:
                await _close(pubsub)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            envelope = _Envelope.model_validate_json(data)
        except ValidationError as error:
            logger.warning(
                "analytics fan-out ignored a malformed message on %r: %s", channel, error
            )
            return
        if envelope.origin == self.worker_id:
            return  # ours: export() delivered it locally already
        suffix = channel.decode(errors="replace").rpartition(":")[2]
        tenant_id = None if suffix == NO_TENANT else suffix
        # A message must not carry another tenant's events into this tenant's stream.
        events = [event for event in envelope.events if event.tenant_id == tenant_id]
        if len(events) != len(envelope.events):
            logger.warning(
                "analytics fan-out ignored %d events on %r of another tenant",
                len(envelope.events) - len(events),
                channel,
            )
        self.hub.publish(events)

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Deliver `events` to the local hub, then publish them for the other workers."""
        if not events:
            return ExportResult(success=True, exported_count=0)
        self.hub.publish(events)
        by_tenant: dict[str | None, list[AnalyticsEvent]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant_id, []).append(event)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for tenant_id, group in by_tenant.items():
                    message = _Envelope(origin=self.worker_id, events=group).model_dump_json()
                    pipe.publish(self.channel(tenant_id), message)
                await pipe.execute()
        except (RedisError, OSError) as error:
            return ExportResult(
                success=False,
                exported_count=0,
                error=f"redis {self._where}: {type(error).__name__}: {error}",
            )
        return ExportResult(success=True, exported_count=len(events))

    async def aclose(self) -> None:
        """Stop the listener and close the Redis connections."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._client.aclose()

    async def __aenter__(self) -> RedisFanout:
        await self.start()
        return self
