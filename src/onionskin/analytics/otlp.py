"""`OTLPAnalyticsExporter`: analytics events as OpenTelemetry log records (events).

Each analytics event becomes one log record named `onionskin.{type}` (an OpenTelemetry
event), with the event's fields in its body and its ids as attributes. Only the
OpenTelemetry API is needed to emit; where the records go is the logger provider's
business: the application's global provider, one passed in, or one built here around an
SDK exporter (`OTLPLogExporter` from `opentelemetry-exporter-otlp` for an OTLP collector):

```python
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

exporter = OTLPAnalyticsExporter.with_exporter(OTLPLogExporter(endpoint=...))
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.util.types import AnyValue, Attributes

from onionskin.analytics.events import AnalyticsEvent
from onionskin.analytics.exporter import BaseAnalyticsExporter, ExportResult
from onionskin.core.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter

SCOPE = "onionskin.analytics"
_FAILURES = frozenset({"run_failed", "agent_failed", "model_error"})


def _severity(event: AnalyticsEvent) -> SeverityNumber:
    failed = event.type in _FAILURES or event.data.get("success") is False
    return SeverityNumber.WARN if failed else SeverityNumber.INFO


def _attributes(event: AnalyticsEvent) -> Attributes:
    attributes: dict[str, Any] = {"onionskin.event.id": event.id}  # Any: attribute values
    if event.tenant_id is not None:
        attributes["onionskin.tenant_id"] = event.tenant_id
    if event.run_id is not None:
        attributes["onionskin.run_id"] = event.run_id
    return attributes


class OTLPAnalyticsExporter(BaseAnalyticsExporter):
    """Emits analytics events as OpenTelemetry log records through a logger provider.

    Args:
        logger_provider: where the records go; the global provider by default (set with
            `opentelemetry._logs.set_logger_provider`).

    Raises:
        ConfigError: `logger_provider` is not an OpenTelemetry logger provider.
    """

    def __init__(self, *, logger_provider: LoggerProvider | None = None) -> None:
        if logger_provider is not None and not isinstance(logger_provider, LoggerProvider):
            raise ConfigError(
                "OTLPAnalyticsExporter.logger_provider must be an OpenTelemetry LoggerProvider, "
                f"got {logger_provider!r}"
            )
        self._provider = logger_provider
        self._owned: Any = None  # Any: an SDK provider, when with_exporter() built one

    @classmethod
    def with_exporter(cls, exporter: LogRecordExporter) -> OTLPAnalyticsExporter:
        """An exporter with a provider of its own that batches records to `exporter`.

        `aclose()` then flushes and shuts that provider down.

        Raises:
            ImportError: the OpenTelemetry SDK is not installed.
        """
        try:
            from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        except ImportError as error:  # pragma: no cover - the test extra installs the SDK
            raise ImportError(
                "OTLPAnalyticsExporter.with_exporter needs the OpenTelemetry SDK: pip install "
                '"onionskin[otel]"'
            ) from error
        provider = SdkLoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        made = cls(logger_provider=provider)
        made._owned = provider
        return made

    def _emit(self, events: Sequence[AnalyticsEvent]) -> None:
        provider = self._provider or get_logger_provider()
        logger = provider.get_logger(SCOPE)
        for event in events:
            body: AnyValue = event.model_dump(mode="json")["data"]
            logger.emit(
                timestamp=int(event.timestamp.timestamp() * 1_000_000_000),
                event_name=f"onionskin.{event.type}",
                severity_number=_severity(event),
                body=body,
                attributes=_attributes(event),
            )

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Emit one log record per event.

        Emitting runs in a worker thread: a provider with a synchronous processor exports
        while it emits, which must not block the event loop.
        """
        if not events:
            return ExportResult(success=True, exported_count=0)
        await asyncio.to_thread(self._emit, events)
        return ExportResult(success=True, exported_count=len(events))

    async def aclose(self) -> None:
        """Flush and shut down the provider `with_exporter()` built (others are the app's)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await asyncio.to_thread(owned.shutdown)
