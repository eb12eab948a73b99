"""`AnalyticsCoordinator`: a run's events, as analytics, to every exporter, off the run's path.

Seed 003 recipe 7 builds `AnalyticsCoordinator(exporters=[ws_exporter])` and hands it to
the orchestrator. Here it attaches either way, with the same records:

```python
coordinator = AnalyticsCoordinator(exporters=[WebSocketAnalyticsExporter(hub)])
orchestrator.use(coordinator)                                # every run, as middleware
await orchestrator.execute("Hello!", on_event=coordinator)   # or as one run's event sink
```

Recording never waits and never raises into the run: each exporter has a bounded buffer
drained by its own task, in batches. A slow exporter falls behind (its oldest events are
dropped and counted), a failing one is logged; neither slows or fails a run, nor delays
the other exporters. The coordinator does not close the exporters: their owner does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from onionskin.analytics._checks import optional_seconds, whole_number
from onionskin.analytics._lane import ExporterStats, ExportLane
from onionskin.analytics._observer import RunObserver
from onionskin.analytics.events import AnalyticsEvent, from_run_event
from onionskin.analytics.exporter import AnalyticsExporter
from onionskin.core.errors import ConfigError
from onionskin.core.events import RunEvent

logger = logging.getLogger("onionskin.analytics")

__all__ = ["AnalyticsCoordinator", "ExporterStats"]


class AnalyticsCoordinator(RunObserver):
    """Turns runs into analytics events and exports them in batches (seed 003).

    Args:
        exporters: where events go; each gets its own buffer and task.
        batch_size: the most events one `export()` call receives.
        max_buffer: events each exporter may have waiting; beyond it the oldest are dropped.
        export_timeout: seconds one `export()` may take before its batch counts as failed
            (None: no limit, a stuck exporter then only ever fills its buffer).

    Raises:
        ConfigError: an exporter has no `export` method, or an option is out of range.
    """

    def __init__(
        self,
        exporters: Iterable[AnalyticsExporter] = (),
        *,
        batch_size: int = 100,
        max_buffer: int = 10_000,
        export_timeout: float | None = 30.0,
    ) -> None:
        given: object = exporters  # object: checked here, whatever the caller passed
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise ConfigError(
                f"AnalyticsCoordinator.exporters must be a list of exporters, got {given!r}"
            )
        chosen: list[AnalyticsExporter] = list(exporters)
        for index, exporter in enumerate(chosen):
            if not callable(getattr(exporter, "export", None)):
                raise ConfigError(
                    f"AnalyticsCoordinator.exporters[{index}] has no export(events) method: "
                    f"{exporter!r}"
                )
        self.batch_size = whole_number("AnalyticsCoordinator.batch_size", batch_size)
        self.max_buffer = whole_number("AnalyticsCoordinator.max_buffer", max_buffer)
        self.export_timeout = optional_seconds(
            "AnalyticsCoordinator.export_timeout", export_timeout
        )
        self._lanes = tuple(
            ExportLane(
                exporter,
                batch_size=self.batch_size,
                capacity=self.max_buffer,
                timeout=self.export_timeout,
            )
            for exporter in chosen
        )

    @property
    def exporters(self) -> tuple[AnalyticsExporter, ...]:
        """The exporters, in the order given."""
        return tuple(lane.exporter for lane in self._lanes)

    def record(self, event: RunEvent | AnalyticsEvent) -> None:
        """Buffer one event for every exporter: a run event (converted) or an analytics event.

        Never waits and never raises: analytics must not break a run.
        """
        try:
            converted = event if isinstance(event, AnalyticsEvent) else from_run_event(event)
        except Exception:  # a bug here must not reach the run
            logger.exception("analytics could not convert %r; it is skipped", event)
            return
        if converted is None:
            return
        for lane in self._lanes:
            lane.put(converted)

    def __call__(self, event: RunEvent | AnalyticsEvent) -> None:
        """`record(event)`: the coordinator is an `on_event` sink."""
        self.record(event)

    def stats(self) -> tuple[ExporterStats, ...]:
        """Each exporter's counters (exported, failed batches, dropped, pending)."""
        return tuple(lane.stats() for lane in self._lanes)

    @property
    def dropped(self) -> int:
        """Events dropped from full buffers, all exporters together."""
        return sum(lane.stats().dropped for lane in self._lanes)

    async def flush(self) -> None:
        """Wait until every buffered event has been through an export.

        A stuck exporter makes this wait as long as its `export_timeout`; bound the wait
        with `asyncio.timeout()` when that may be long.
        """
        await asyncio.gather(*(lane.wait_idle() for lane in self._lanes))

    async def aclose(self, grace: float | None = 5.0) -> None:
        """Flush for up to `grace` seconds (None: no limit), then stop the export tasks."""
        limit = optional_seconds("AnalyticsCoordinator.aclose grace", grace)
        try:
            async with asyncio.timeout(limit):
                await self.flush()
        except TimeoutError:
            logger.warning("analytics: exporters still had events pending at close; they are lost")
        for lane in self._lanes:
            await lane.stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
