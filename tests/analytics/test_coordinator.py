"""AnalyticsCoordinator: batches off the run's path; slow or failing exporters never hurt a run."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from onionskin import ConfigError, TenantContext
from onionskin.analytics import AnalyticsCoordinator, ExportResult
from onionskin.testing import tool_call
from tests.analytics.conftest import (
    EventFactory,
    FailingExporter,
    RecordingExporter,
    StuckExporter,
)
from tests.conftest import OrchestratorFactory

TENANT = TenantContext(tenant_id="acme")


def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


def script(request: Any) -> Any:
    if request.messages[-1].role == "tool":
        return "It has shipped."
    return tool_call("lookup", order_id="A1")


async def test_events_recorded_together_are_exported_in_batches(make_event: EventFactory) -> None:
    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter], batch_size=2)
    for number in range(5):
        coordinator.record(make_event("acme", number=number))
    await coordinator.flush()

    assert [len(batch) for batch in exporter.batches] == [2, 2, 1]
    assert [e.data["number"] for e in exporter.events] == [0, 1, 2, 3, 4]
    [stats] = coordinator.stats()
    assert (stats.name, stats.exported, stats.pending, stats.dropped) == (
        "RecordingExporter",
        5,
        0,
        0,
    )


async def test_a_stuck_exporter_does_not_slow_the_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stuck = StuckExporter()
    coordinator = AnalyticsCoordinator([stuck], export_timeout=None)
    orchestrator = orchestrator_factory(script, tools=[lookup], middleware=[coordinator])

    # Bounded: were exports on the run's path, the runs would never finish.
    first = await asyncio.wait_for(orchestrator.execute("where?", context=TENANT), 5)
    await asyncio.wait_for(stuck.entered.wait(), 5)  # the exporter is now stuck in export()
    second = await asyncio.wait_for(orchestrator.execute("where?", context=TENANT), 5)

    assert first.output == second.output == "It has shipped."
    assert stuck.calls == 1
    [stats] = coordinator.stats()
    assert stats.exported == 0
    assert stats.pending == 12  # six events per run, none exported
    await coordinator.aclose(grace=0.001)


async def test_a_stuck_exporter_does_not_hold_up_the_others(make_event: EventFactory) -> None:
    stuck, recorder = StuckExporter(), RecordingExporter()
    coordinator = AnalyticsCoordinator([stuck, recorder], export_timeout=None)
    coordinator.record(make_event("acme", n=1))
    await asyncio.wait_for(stuck.entered.wait(), 5)
    coordinator.record(make_event("acme", n=2))

    events = await recorder.wait_for(2)

    assert [e.data["n"] for e in events] == [1, 2]
    stuck.release.set()
    await asyncio.wait_for(coordinator.flush(), 5)
    assert [s.exported for s in coordinator.stats()] == [2, 2]


async def test_a_full_buffer_drops_the_oldest_events_and_counts_them(
    make_event: EventFactory,
) -> None:
    stuck = StuckExporter()
    coordinator = AnalyticsCoordinator([stuck], max_buffer=3, batch_size=1, export_timeout=None)
    coordinator.record(make_event("acme", n=0))
    await asyncio.wait_for(stuck.entered.wait(), 5)  # n=0 is in flight
    for n in range(1, 8):
        coordinator.record(make_event("acme", n=n))

    assert coordinator.dropped == 4  # 1..4 fell out; 5, 6, 7 wait
    assert coordinator.stats()[0].pending == 4

    recorder = RecordingExporter()
    stuck.export = recorder.export  # type: ignore[method-assign]  # now it works
    stuck.release.set()
    await asyncio.wait_for(coordinator.flush(), 5)
    assert [e.data["n"] for e in recorder.events] == [5, 6, 7]


@pytest.mark.parametrize("how", ["raise", "unsuccessful", "not a result"])
async def test_a_failing_exporter_is_logged_and_the_run_succeeds(
    how: str, orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    failing, recorder = FailingExporter(how), RecordingExporter()
    coordinator = AnalyticsCoordinator([failing, recorder])
    orchestrator = orchestrator_factory(script, tools=[lookup], middleware=[coordinator])

    with caplog.at_level(logging.WARNING, logger="onionskin.analytics"):
        result = await orchestrator.execute("where?", context=TENANT)
        await coordinator.flush()

    assert result.output == "It has shipped."
    assert failing.calls >= 1
    failed, fine = coordinator.stats()
    assert failed.failed_batches == failing.calls
    assert failed.exported == 0
    assert fine.exported == len(recorder.events) == 6
    assert any("FailingExporter" in r.getMessage() for r in caplog.records)


async def test_an_export_over_its_timeout_counts_as_failed(
    make_event: EventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = StuckExporter()
    coordinator = AnalyticsCoordinator([stuck], export_timeout=0.01)
    with caplog.at_level(logging.WARNING, logger="onionskin.analytics"):
        coordinator.record(make_event("acme"))
        await asyncio.wait_for(coordinator.flush(), 5)

    [stats] = coordinator.stats()
    assert (stats.failed_batches, stats.exported, stats.pending) == (1, 0, 0)
    assert "did not finish" in caplog.text


async def test_events_recorded_outside_a_loop_wait_for_one(make_event: EventFactory) -> None:
    exporter = RecordingExporter()
    coordinator = AnalyticsCoordinator([exporter])

    def record_in_a_thread() -> None:
        coordinator.record(make_event("acme", n=1))  # no running loop in this thread

    await asyncio.to_thread(record_in_a_thread)
    assert exporter.events == []
    await coordinator.flush()

    assert [e.data["n"] for e in exporter.events] == [1]


async def test_a_coordinator_without_exporters_accepts_events(make_event: EventFactory) -> None:
    async with AnalyticsCoordinator() as coordinator:
        coordinator.record(make_event("acme"))
        await coordinator.flush()
        assert coordinator.stats() == ()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"exporters": "webhook"}, "exporters"),
        ({"exporters": [object()]}, "exporters[0]"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"max_buffer": -1}, "max_buffer"),
        ({"export_timeout": 0}, "export_timeout"),
        ({"export_timeout": float("nan")}, "export_timeout"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"AnalyticsCoordinator.{field} ")):
        AnalyticsCoordinator(**options)


def test_export_results_default_to_no_error() -> None:
    result = ExportResult(success=True, exported_count=3)
    assert (result.success, result.exported_count, result.error) == (True, 3, None)
