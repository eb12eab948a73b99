"""`LiveAnalytics.sink`: without Redis, only events some client on this worker can see."""

from __future__ import annotations

from tests.server.conftest import settings

from onionskin.core.events import RunStarted
from onionskin.server.routes._live import LiveAnalytics


async def test_events_of_tenants_without_a_client_here_are_skipped() -> None:
    live = await LiveAnalytics.start(settings(), database_url="sqlite:///live.db")
    try:
        nobody_yet = RunStarted(run_id="r0", tenant_id="acme", pipeline_id="echo")
        live.sink(nobody_yet)
        async with live.hub.subscribe("acme") as acme_events:
            for run, tenant in (("r1", "globex"), ("r2", "acme"), ("r3", None)):
                live.sink(RunStarted(run_id=run, tenant_id=tenant, pipeline_id="echo"))
            await live.coordinator.flush()
            [stats] = live.coordinator.stats()
            delivered = await acme_events.next_batch()
    finally:
        await live.aclose()

    assert [(event.run_id, event.tenant_id) for event in delivered] == [("r2", "acme")]
    assert stats.exported == 1  # the others were never converted nor buffered
    assert stats.dropped == 0
