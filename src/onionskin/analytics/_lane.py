"""One exporter's lane: a bounded buffer and the task that exports it in batches.

Each exporter gets its own lane, so a slow or broken exporter only fills (and drops from)
its own buffer: the others, and the runs, carry on. Batches form by themselves: while one
export is in flight the next events queue up, and the worker takes them all (up to
`batch_size`) at once, so no timer is needed to group them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from onionskin.analytics.events import AnalyticsEvent
from onionskin.analytics.exporter import AnalyticsExporter, ExportResult, exporter_name

logger = logging.getLogger("onionskin.analytics")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExporterStats:
    """What one exporter of a coordinator has done so far."""

    name: str
    exported: int
    """Events the exporter reported exported."""
    failed_batches: int
    """Batches that failed: an unsuccessful result, a raise, or the export timeout."""
    dropped: int
    """Events discarded because the buffer was full (the oldest go first)."""
    pending: int
    """Events waiting, plus those in the export in flight."""


class ExportLane:
    """A bounded buffer in front of one exporter, drained by a task on the running loop."""

    def __init__(
        self,
        exporter: AnalyticsExporter,
        *,
        batch_size: int,
        capacity: int,
        timeout: float | None,
    ) -> None:
        self.exporter = exporter
        self.name = exporter_name(exporter)
        self._batch_size = batch_size
        self._timeout = timeout
        # Oldest first out when full: a live view wants the newest events.
        self._items: deque[AnalyticsEvent] = deque(maxlen=capacity)
        self._in_flight = 0
        self._exported = 0
        self._failed = 0
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def stats(self) -> ExporterStats:
        """A snapshot of the lane's counters."""
        return ExporterStats(
            name=self.name,
            exported=self._exported,
            failed_batches=self._failed,
            dropped=self._dropped,
            pending=len(self._items) + self._in_flight,
        )

    def put(self, event: AnalyticsEvent) -> None:
        """Buffer `event` and wake the worker; never waits."""
        items = self._items
        if len(items) == items.maxlen:
            self._dropped += 1
        items.append(event)
        self._idle.clear()
        self._ensure_worker()
        self._wakeup.set()

    def _ensure_worker(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the events wait for the next put or flush inside one
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            # A task of another (finished) loop cannot be awaited here: start afresh,
            # with events bound to this loop.
            self._wakeup = asyncio.Event()
            self._idle = asyncio.Event()
            self._task = loop.create_task(self._work(), name=f"onionskin-analytics-{self.name}")

    async def _work(self) -> None:
        items = self._items
        while True:
            while not items:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = [items.popleft() for _ in range(min(self._batch_size, len(items)))]
            self._in_flight = len(batch)
            try:
                await self._export(batch)
            finally:
                self._in_flight = 0

    async def _export(self, batch: list[AnalyticsEvent]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                # object: a third-party exporter may break the protocol's promise.
                result: object = await self.exporter.export(batch)
        except TimeoutError:
            self._failed += 1
            logger.warning(
                "analytics exporter %s did not finish a batch of %d in %s s; the batch is lost",
                self.name,
                len(batch),
                self._timeout,
            )
            return
        except Exception:
            self._failed += 1
            logger.exception("analytics exporter %s raised; %d events lost", self.name, len(batch))
            return
        if not isinstance(result, ExportResult):
            self._failed += 1
            logger.error(
                "analytics exporter %s returned %r, not an ExportResult", self.name, result
            )
        elif not result.success:
            self._failed += 1
            logger.warning(
                "analytics exporter %s failed a batch of %d: %s",
                self.name,
                len(batch),
                result.error,
            )
        else:
            self._exported += result.exported_count

    async def wait_idle(self) -> None:
        """Wait until every buffered event has been through an export."""
        if self._items or self._in_flight:
            self._ensure_worker()
            await self._idle.wait()

    async def stop(self) -> None:
        """Cancel the worker (a batch in flight is abandoned)."""
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Ours was cancelled; re-raise only when the caller itself is being cancelled.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
