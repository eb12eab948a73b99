"""`WebSocket /api/v1/ws/analytics`: authenticated, and one tenant's live events only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.conftest import DOWN_REDIS_URL
from tests.server._live_server import WS, Start, live_servers, take_events
from tests.server.conftest import GLOBEX_KEY, LEAK, Serve, acme, globex, settings, token
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from onionskin.core.errors import StoreError
from onionskin.project import Project

ACME_TOKEN = token({"org_id": "acme", "org_role": "admin", "sub": "alice"})


@pytest.fixture
async def start(project: Project, tmp_path: Path) -> AsyncIterator[Start]:
    """`await start(settings)`: the app served by uvicorn on a free port."""
    async with live_servers(project, tmp_path) as begin:
        yield begin


async def closed_with(socket: ClientConnection) -> tuple[int, str]:
    """The close code and reason the server ended `socket` with (nothing else may come)."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            await socket.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_client_sees_its_own_tenants_events_only(start: Start) -> None:
    server = await start()
    acme_socket = await server.socket(f"{WS}?token={ACME_TOKEN}")
    globex_socket = await server.socket(f"{WS}?api_key={GLOBEX_KEY}")

    a = await server.run("assistant", "rust", acme())
    seen_by_acme = await take_events(acme_socket, until_type="run_completed", run_id=a["run_id"])
    b = await server.run("echo", "hi", globex())
    seen_by_globex = await take_events(globex_socket, until_type="run_completed")

    assert {event["tenant_id"] for event in seen_by_acme} == {"acme"}
    assert {event["run_id"] for event in seen_by_acme} == {a["run_id"]}
    types = [event["type"] for event in seen_by_acme]
    assert types[0] == "run_started"
    assert {"token_usage", "tool_call", "agent_finished", "run_completed"} <= set(types)
    tool = next(event for event in seen_by_acme if event["type"] == "tool_call")
    assert tool["data"]["tool"] == "lookup"
    # Events arrive in order: an acme event leaking to globex would come before its own.
    assert {event["tenant_id"] for event in seen_by_globex} == {"globex"}
    assert {event["run_id"] for event in seen_by_globex} == {b["run_id"]}


async def test_the_organization_may_come_from_the_path_or_the_org_id_parameter(
    start: Start,
) -> None:
    server = await start()
    by_path = await server.socket(f"/api/v1/organizations/acme/ws/analytics?token={ACME_TOKEN}")
    by_parameter = await server.socket(f"{WS}?token={ACME_TOKEN}&org_id=acme")
    by_header = await server.socket(WS, Authorization=f"Bearer {ACME_TOKEN}")

    run = await server.run("echo", "x", acme())

    for socket in (by_path, by_parameter, by_header):
        seen = await take_events(socket, until_type="run_completed", run_id=run["run_id"])
        assert {event["tenant_id"] for event in seen} == {"acme"}


OTHER_KEY = "another-secret-that-is-long-enough-000000"
REFUSED = {
    "none": "",
    "garbage": "?token=not-a-token",
    "bad-signature": f"?token={token({'org_id': 'acme'}, key=OTHER_KEY)}",
    "expired": f"?token={token({'org_id': 'acme'}, expires_in=-3600)}",
    "two-credentials": f"?token={ACME_TOKEN}&api_key={GLOBEX_KEY}",
    "empty-key": "?api_key=",
}


async def test_refused_credentials_close_with_4401(start: Start) -> None:
    server = await start()

    for case, query in REFUSED.items():
        socket = await server.socket(f"{WS}{query}")

        assert await closed_with(socket) == (4401, "invalid or missing credentials"), case
    assert server.live.hub.subscriber_count("acme") == 0


async def test_a_malformed_authorization_header_is_refused_not_ignored(start: Start) -> None:
    server = await start(settings(anonymous=True))

    socket = await server.socket(f"{WS}?org_id=acme", Authorization="Basic YWxpY2U6cHc=")

    assert (await closed_with(socket))[0] == 4401


CONFLICTS = {
    "parameter": f"{WS}?token={ACME_TOKEN}&org_id=globex",
    "path": f"/api/v1/organizations/globex/ws/analytics?token={ACME_TOKEN}",
    "api-key-path": f"/api/v1/organizations/acme/ws/analytics?api_key={GLOBEX_KEY}",
    "no-org-claim": f"{WS}?token={token({'sub': 'alice'})}",
    "malformed-org": f"{WS}?token={token({'org_id': 'a/b', 'sub': 'alice'})}",
}


async def test_a_missing_or_conflicting_organization_closes_with_4403(start: Start) -> None:
    server = await start()

    for case, path in CONFLICTS.items():
        socket = await server.socket(path)

        code, reason = await closed_with(socket)
        assert code == 4403, case
        assert "acme" not in reason
        assert "globex" not in reason
    assert server.live.hub.subscriber_count("acme") == 0
    assert server.live.hub.subscriber_count("globex") == 0


async def test_insecure_local_mode_takes_the_organization_from_org_id(start: Start) -> None:
    server = await start(settings(jwt_secret=None, api_keys={}, anonymous=True))
    named = await server.socket(f"{WS}?org_id=acme")
    unnamed = await server.socket(WS)

    run = await server.run("echo", "x", {"X-Org-ID": "acme"})

    seen = await take_events(named, until_type="run_completed", run_id=run["run_id"])
    assert {event["tenant_id"] for event in seen} == {"acme"}
    assert (await closed_with(unnamed))[0] == 4403


async def test_errors_reach_the_dashboard_only_when_the_api_would_show_them(start: Start) -> None:
    server = await start()
    socket = await server.socket(f"{WS}?token={ACME_TOKEN}")

    crashed = await server.run("crash", "x", acme())
    failed = await server.run("limited", "x", acme())

    assert crashed["status"] == 500
    seen = await take_events(socket, until_type="run_failed", count=2)
    text = json.dumps(seen)
    assert LEAK not in text
    assert "hunter2" not in text
    hidden, shown = [event for event in seen if event["type"] == "run_failed"]
    assert (hidden["data"]["error_type"], hidden["data"]["error"]) == (
        "ServerError",
        "the run failed",
    )
    assert shown["data"]["error_type"] == "RateLimitExceededError"
    assert "rate limit 'tenant' exceeded" in shown["data"]["error"]
    assert failed["code"] == "rate_limited"
    model_errors = [event for event in seen if event["type"] == "model_error"]
    assert model_errors[0]["data"]["error"] == "the call failed"


async def test_with_redis_a_client_still_sees_the_runs_of_its_own_worker(
    start: Start, redis_url: str
) -> None:
    server = await start(settings(redis_url=redis_url))
    socket = await server.socket(f"{WS}?token={ACME_TOKEN}")

    first = await server.run("echo", "x", acme())
    seen = await take_events(socket, until_type="run_completed", run_id=first["run_id"])
    second = await server.run("echo", "y", acme())
    seen += await take_events(socket, until_type="run_completed", run_id=second["run_id"])

    # Delivered locally once, never again when the worker's own Redis message comes back.
    ids = [event["id"] for event in seen]
    assert len(ids) == len(set(ids))
    assert [event["type"] for event in seen].count("run_started") == 2
    assert {event["tenant_id"] for event in seen} == {"acme"}


async def test_a_redis_that_is_down_fails_start_up(serve: Serve) -> None:
    with pytest.raises(StoreError, match=r"could not subscribe at Redis 127\.0\.0\.1:1\b"):
        await serve(settings(redis_url=DOWN_REDIS_URL))
