"""`settle_heap`: `onionskin serve` freezes the started app's objects and collects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from httpx2 import ASGITransport, AsyncClient

from onionskin.project import Project
from onionskin.server import ServerSettings, create_app
from onionskin.server.heap import OLDER_THRESHOLDS, YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The collector as the test found it: thresholds back, frozen objects thawed."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_heap_freezes_what_is_alive_and_raises_the_thresholds(restored_gc: None) -> None:
    survivor = [object() for _ in range(1_000)]
    gc.unfreeze()
    settle_heap()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


async def test_only_an_app_asked_to_settles_the_heap_when_it_starts(
    project: Project, restored_gc: None, tmp_path: object
) -> None:
    gc.unfreeze()
    defaults = gc.get_threshold()
    plain = create_app(
        project, ServerSettings(anonymous=True), database_url=f"sqlite:///{tmp_path}/a.db"
    )
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0  # an embedded app leaves the process alone
        assert gc.get_threshold() == defaults
    served = create_app(
        project,
        ServerSettings(anonymous=True),
        database_url=f"sqlite:///{tmp_path}/b.db",
        settle_heap_on_start=True,
    )
    async with served.router.lifespan_context(served):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        async with AsyncClient(transport=ASGITransport(app=served), base_url="http://t") as http:
            assert (await http.get("/openapi.json")).status_code == 200
