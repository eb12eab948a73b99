"""Redis channels per deployment: two deployments sharing a Redis never meet, even when
both have a tenant of the same name; every worker of one deployment shares them."""

from __future__ import annotations

import socket
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.server._live_server import WS, running, take_events
from tests.server.conftest import ACME_KEY, acme, settings
from websockets.asyncio.client import connect

from onionskin.analytics import AnalyticsEvent, LiveHub
from onionskin.analytics.redis_fanout import RedisFanout
from onionskin.core.errors import ConfigError
from onionskin.project import Project
from onionskin.server import ServerSettings, create_app
from onionskin.server.routes._live import deployment_channels


def test_one_database_one_set_of_channels_whatever_its_password() -> None:
    one = deployment_channels("postgresql+asyncpg://app:old@db.internal:5432/prod")
    rotated = deployment_channels("postgresql+asyncpg://app:new@db.internal:5432/prod")
    staging = deployment_channels("postgresql+asyncpg://app:old@db.internal:5432/staging")

    assert one == rotated
    assert one != staging
    assert "old" not in one
    assert one.startswith("onionskin:analytics:")
    ServerSettings(anonymous=True, redis_channel_prefix=one)  # a valid prefix


def test_a_sqlite_path_on_another_machine_is_another_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "sqlite:////srv/app/.onionskin/onionskin.db"
    here = deployment_channels(url)
    monkeypatch.setattr(socket, "gethostname", lambda: "another-machine")

    assert deployment_channels(url) != here


def test_the_prefix_setting_is_read_and_checked() -> None:
    read = ServerSettings.from_env({"ONIONSKIN_REDIS_CHANNEL_PREFIX": "shop:live"}, anonymous=True)
    with pytest.raises(ConfigError, match=r"ServerSettings\.redis_channel_prefix must be"):
        ServerSettings(anonymous=True, redis_channel_prefix="shop:*")

    assert read.redis_channel_prefix == "shop:live"


async def _acme_events_seen(
    project: Project, tmp_path: Path, redis_url: str, databases: tuple[str, str]
) -> list[dict[str, Any]]:
    """What a client of acme on the first app sees of acme's run on the second app.

    Every event up to a sentinel published on the first app's channel once the second
    app's events are all out: Redis delivers in order, so one of theirs would come first.
    """
    urls = [f"sqlite:///{tmp_path}/{name}" for name in databases]
    apps = [create_app(project, settings(redis_url=redis_url), database_url=url) for url in urls]
    async with AsyncExitStack() as stack:
        first, second = [await stack.enter_async_context(running(app)) for app in apps]
        client = await stack.enter_async_context(
            connect(f"ws://{first}{WS}?api_key={ACME_KEY}", proxy=None)
        )
        http = await stack.enter_async_context(httpx2.AsyncClient(base_url=f"http://{second}"))
        ran = await http.post(
            "/api/v1/pipelines/echo/execute", json={"input": "hi"}, headers=acme()
        )
        await apps[1].state.live.coordinator.flush()  # published, every one of them
        sentinel = RedisFanout(
            redis_url, LiveHub(), channel_prefix=deployment_channels(urls[0]), worker_id="test"
        )
        stack.push_async_callback(sentinel.aclose)
        await sentinel.export([AnalyticsEvent(type="sentinel", tenant_id="acme", run_id="s")])
        seen = await take_events(client, until_type="sentinel")
    assert ran.status_code == 200
    return [event for event in seen if event["run_id"] == ran.json()["run_id"]]


async def test_two_deployments_on_one_redis_never_see_each_others_tenants(
    project: Project, tmp_path: Path, redis_url: str
) -> None:
    leaked = await _acme_events_seen(project, tmp_path, redis_url, ("a.db", "b.db"))

    assert leaked == []  # the other deployment's acme is another customer


async def test_workers_of_one_deployment_share_its_channels(
    project: Project, tmp_path: Path, redis_url: str
) -> None:
    shared = await _acme_events_seen(project, tmp_path, redis_url, ("a.db", "a.db"))

    assert shared[0]["type"] == "run_started"
    assert {event["tenant_id"] for event in shared} == {"acme"}
