"""OTLPAnalyticsExporter: events become OpenTelemetry log records (the SDK's in-memory exporter)."""

from __future__ import annotations

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from onionskin import ConfigError
from onionskin.analytics import AnalyticsCoordinator, OTLPAnalyticsExporter
from tests.analytics.conftest import EventFactory


def in_memory_exporter() -> InMemoryLogRecordExporter:
    return InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # untyped in the SDK


def in_memory_provider() -> tuple[LoggerProvider, InMemoryLogRecordExporter]:
    memory = in_memory_exporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    return provider, memory


async def test_each_event_is_one_named_log_record(make_event: EventFactory) -> None:
    provider, memory = in_memory_provider()
    exporter = OTLPAnalyticsExporter(logger_provider=provider)
    usage = make_event("acme", "token_usage", total_tokens=42, cost_usd="0.000125")
    failed = make_event(None, "tool_call", tool="lookup", success=False)

    result = await exporter.export([usage, failed])

    assert (result.success, result.exported_count) == (True, 2)
    first, second = (finished.log_record for finished in memory.get_finished_logs())
    assert first.event_name == "onionskin.token_usage"
    assert first.body == {"total_tokens": 42, "cost_usd": "0.000125"}
    assert first.timestamp == int(usage.timestamp.timestamp() * 1_000_000_000)
    assert first.severity_number == SeverityNumber.INFO
    assert dict(first.attributes or {}) == {
        "onionskin.event.id": usage.id,
        "onionskin.tenant_id": "acme",
        "onionskin.run_id": "run-1",
    }
    assert second.event_name == "onionskin.tool_call"
    assert second.severity_number == SeverityNumber.WARN
    assert "onionskin.tenant_id" not in dict(second.attributes or {})
    scopes = {f.instrumentation_scope for f in memory.get_finished_logs()}
    assert [scope.name if scope else None for scope in scopes] == ["onionskin.analytics"]


async def test_with_exporter_batches_and_flushes_at_close(make_event: EventFactory) -> None:
    memory = in_memory_exporter()
    exporter = OTLPAnalyticsExporter.with_exporter(memory)
    coordinator = AnalyticsCoordinator([exporter])
    for n in range(3):
        coordinator.record(make_event("acme", n=n))
    await coordinator.flush()
    await exporter.aclose()  # shuts its own provider down: the batch processor flushes

    bodies = [finished.log_record.body for finished in memory.get_finished_logs()]
    assert bodies == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert coordinator.stats()[0].exported == 3


async def test_the_global_provider_is_used_by_default(make_event: EventFactory) -> None:
    """Without an SDK configured globally, records go to the API's no-op: nothing breaks."""
    result = await OTLPAnalyticsExporter().export([make_event("acme")])
    assert (result.success, result.exported_count) == (True, 1)


def test_a_wrong_provider_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"OTLPAnalyticsExporter\.logger_provider"):
        OTLPAnalyticsExporter(logger_provider="http://collector:4318")  # type: ignore[arg-type]
