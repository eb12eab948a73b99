"""The exporter seam (seed 003's `IAnalyticsExporter`): a batch of events in, an `ExportResult` out.

An exporter sends analytics events somewhere: WebSocket clients through the live hub,
OpenTelemetry, a webhook, Redis for other workers. The coordinator calls `export()` off
the run's path, so an exporter may take its time; it reports failure in its result
(`success=False` and an `error`) rather than raising, though a raise is caught too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from onionskin.analytics.events import AnalyticsEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportResult:
    """What one `export()` achieved (seed 003: `ExportResult(success=True, exported_count=0)`)."""

    success: bool
    """True when the batch reached its destination."""
    exported_count: int
    """How many of the batch's events were exported."""
    error: str | None = None
    """Why the batch failed, for the log; None on success."""


@runtime_checkable
class AnalyticsExporter(Protocol):
    """Sends batches of analytics events somewhere."""

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Export `events` (in order); report failure in the result."""
        ...


IAnalyticsExporter = AnalyticsExporter
"""Seed 003's name for the exporter protocol."""


class BaseAnalyticsExporter(ABC):
    """An exporter base to subclass: `export()` to write, `aclose()` when it holds resources.

    Usable as `async with exporter:`, which closes it at the end. The coordinator never
    closes exporters: whoever built one closes it.
    """

    @property
    def name(self) -> str:
        """The exporter's name in logs and statistics: its class name by default."""
        return type(self).__name__

    @abstractmethod
    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Export `events` (in order); report failure in the result."""

    async def aclose(self) -> None:  # noqa: B027 - a no-op default, not abstract on purpose
        """Release what the exporter holds (connections, threads); nothing by default."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def exporter_name(exporter: AnalyticsExporter) -> str:
    """The name logs and statistics use for `exporter`."""
    name = getattr(exporter, "name", None)
    return name if isinstance(name, str) and name else type(exporter).__name__
