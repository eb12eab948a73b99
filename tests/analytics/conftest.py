"""Exporters for coordinator tests (recording, stuck, failing) and an event factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from onionskin.analytics import AnalyticsEvent, BaseAnalyticsExporter, ExportResult

EventFactory = Callable[..., AnalyticsEvent]


class RecordingExporter(BaseAnalyticsExporter):
    """Keeps every batch it is given; `arrived` is set on each."""

    def __init__(self) -> None:
        self.batches: list[list[AnalyticsEvent]] = []
        self.arrived = asyncio.Event()

    @property
    def events(self) -> list[AnalyticsEvent]:
        return [event for batch in self.batches for event in batch]

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.batches.append(list(events))
        self.arrived.set()
        return ExportResult(success=True, exported_count=len(events))

    async def wait_for(self, count: int) -> list[AnalyticsEvent]:
        """Wait (bounded) until `count` events have arrived."""
        async with asyncio.timeout(5):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.events


class StuckExporter(BaseAnalyticsExporter):
    """Never finishes an export: it awaits an event nobody sets (until `release`)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return ExportResult(success=True, exported_count=len(events))


class FailingExporter(BaseAnalyticsExporter):
    """Raises, or answers `success=False`, or answers something that is no ExportResult."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.calls = 0

    async def export(self, events: Sequence[AnalyticsEvent]) -> Any:
        self.calls += 1
        if self.how == "raise":
            raise RuntimeError("exporter exploded")
        if self.how == "unsuccessful":
            return ExportResult(success=False, exported_count=0, error="endpoint said no")
        return "not a result"


@pytest.fixture
def make_event() -> EventFactory:
    """`make_event(tenant_id, type="custom", **data)`: a valid analytics event."""

    def build(tenant_id: str | None, type: str = "custom", **data: Any) -> AnalyticsEvent:
        return AnalyticsEvent(type=type, tenant_id=tenant_id, run_id="run-1", data=data)

    return build
