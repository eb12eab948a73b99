"""The server's live analytics: run events into a hub that WebSocket clients read (seed 003).

```
PipelineRunner.emit → LiveAnalytics.sink     → AnalyticsCoordinator    → exporter      → LiveHub
                      (errors made public)     (buffered, off the run)   WebSocket or
                                                                         RedisFanout
```

With `ServerSettings.redis_url`, a `RedisFanout` replaces the WebSocket exporter: it delivers
to this worker's hub and publishes for the others, so a client connected to one worker sees
the runs of every worker. The hub drops a client that falls `ws_queue_size` events behind.

The Redis channels are the deployment's: `ServerSettings.redis_channel_prefix`, or one
derived from the database URL (its password left out): every worker of a deployment shares
its database, and two deployments that share a Redis but not a database (staging and
production, two products) then never deliver one's tenant `acme` to the other's.

A failed call's or run's error message reaches the dashboard only when the HTTP API would
show it too (`onionskin.server.errors`): a provider's answer or a database URL in an
exception stays in the server's log.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from onionskin.analytics import AnalyticsCoordinator, LiveHub, WebSocketAnalyticsExporter
from onionskin.analytics.exporter import AnalyticsExporter
from onionskin.core.events import CallFailed, RunEvent, RunFailed
from onionskin.server.errors import is_public, public_error
from onionskin.server.settings import ServerSettings

if TYPE_CHECKING:
    from onionskin.analytics.redis_fanout import RedisFanout

logger = logging.getLogger("onionskin.server")

HIDDEN_ERROR_TYPE = "ServerError"
"""The error type a failed run shows when its error is not public (as the SSE stream does)."""
HIDDEN_RUN_ERROR = "the run failed"
"""The error message it shows then."""


def public_event(event: RunEvent) -> RunEvent:
    """`event` as a client may see it: a copy whose error text is generic unless public."""
    if isinstance(event, CallFailed) and not is_public(event.error_type):
        return replace(event, error=public_error(event.error_type, event.error))
    if isinstance(event, RunFailed) and not is_public(event.error_type):
        return replace(event, error_type=HIDDEN_ERROR_TYPE, error=HIDDEN_RUN_ERROR)
    return event


def deployment_channels(database_url: str) -> str:
    """`onionskin:analytics:<digest>`: the channel prefix of the deployment on `database_url`.

    The digest is of the URL without its password (a rotated password keeps the channels);
    for SQLite, whose path may repeat on other machines, of this machine's name as well.
    """
    parts = urlsplit(database_url)
    host = parts.hostname or ""
    where = f"{parts.scheme}://{parts.username or ''}@{host}:{parts.port or ''}{parts.path}"
    if parts.scheme.startswith("sqlite"):
        where += f"#{socket.gethostname()}"
    return f"onionskin:analytics:{hashlib.sha256(where.encode()).hexdigest()[:16]}"


class LiveAnalytics:
    """The hub, the exporter into it and the coordinator of one server process.

    Build it with `await LiveAnalytics.start(settings, database_url=...)`; close it with
    `aclose()`.
    """

    def __init__(
        self, hub: LiveHub, coordinator: AnalyticsCoordinator, *, fanout: RedisFanout | None
    ) -> None:
        self.hub = hub
        self.coordinator = coordinator
        self._fanout = fanout

    @classmethod
    async def start(cls, settings: ServerSettings, *, database_url: str) -> LiveAnalytics:
        """Start live analytics; with `settings.redis_url`, subscribed to Redis first.

        Args:
            settings: the server's settings.
            database_url: the deployment's database, whose URL names its Redis channels
                unless `settings.redis_channel_prefix` does.

        Raises:
            StoreError: the configured Redis could not be reached (start-up fails loudly).
        """
        hub = LiveHub(max_queue=settings.ws_queue_size)
        exporter: AnalyticsExporter
        fanout: RedisFanout | None
        if settings.redis_url is None:
            exporter, fanout = WebSocketAnalyticsExporter(hub), None
        else:
            # Imported here: the redis package is needed only when Redis is configured.
            from onionskin.analytics.redis_fanout import RedisFanout

            prefix = settings.redis_channel_prefix or deployment_channels(database_url)
            exporter = fanout = RedisFanout(settings.redis_url, hub, channel_prefix=prefix)
            try:
                await fanout.start()
            except BaseException:
                await fanout.aclose()
                raise
        return cls(hub, AnalyticsCoordinator(exporters=[exporter]), fanout=fanout)

    def sink(self, event: RunEvent) -> None:
        """An event sink for `PipelineRunner`: record `event`, never waiting, never raising.

        Without Redis, an event whose tenant has no client on this worker is skipped: no
        one could ever see it (a client sees events from when it subscribed on), and
        turning it into analytics costs some 30 µs of a run's CPU for nothing.
        """
        if self._fanout is None and not self.hub.subscriber_count(event.tenant_id):
            return
        self.coordinator.record(public_event(event))

    async def aclose(self) -> None:
        """Export what is buffered (a few seconds at most), end every client, stop Redis."""
        try:
            await self.coordinator.aclose()
        finally:
            self.hub.close()
            if self._fanout is not None:
                await self._fanout.aclose()
