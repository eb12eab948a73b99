"""The analytics WebSocket's credentials as subprotocols: what the dashboard sends.

`Sec-WebSocket-Protocol: onionskin, bearer.<base64url(token)>` (or `api-key.<...>`): the
secret stays out of the URL, which access logs and browser history keep.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.server._live_server import WS, Start, live_servers, take_events
from tests.server.conftest import ACME_KEY, GLOBEX_KEY, acme, token
from tests.server.test_analytics_ws import ACME_TOKEN, closed_with

from onionskin.project import Project


def encoded(secret: str) -> str:
    return base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")


@pytest.fixture
async def start(project: Project, tmp_path: Path) -> AsyncIterator[Start]:
    async with live_servers(project, tmp_path) as begin:
        yield begin


@pytest.mark.parametrize(
    "offer",
    [["onionskin", f"bearer.{encoded(ACME_TOKEN)}"], ["onionskin", f"api-key.{encoded(ACME_KEY)}"]],
    ids=["token", "api-key"],
)
async def test_credentials_as_subprotocols_stream_the_callers_events(
    start: Start, offer: list[str]
) -> None:
    server = await start()
    socket = await server.socket(WS, subprotocols=offer)

    ran = await server.run("echo", "hi", acme())
    seen = await take_events(socket, until_type="run_completed", run_id=ran["run_id"])

    assert socket.subprotocol == "onionskin"
    assert {event["tenant_id"] for event in seen} == {"acme"}
    assert server.live.hub.subscriber_count("acme") == 1


REFUSED = {
    "wrong-token": ["onionskin", f"bearer.{encoded(token({'org_id': 'acme'}, key='x' * 64))}"],
    "not-base64": ["onionskin", "bearer.***"],
    "empty": ["onionskin", "bearer."],
    "twice": ["onionskin", f"bearer.{encoded(ACME_TOKEN)}", f"bearer.{encoded(ACME_TOKEN)}"],
    "key-and-token-disagree-with-query": ["onionskin", f"api-key.{encoded(ACME_KEY)}"],
}


async def test_bad_subprotocol_credentials_close_with_4401_a_browser_can_read(
    start: Start,
) -> None:
    server = await start()

    for case, offer in REFUSED.items():
        query = f"?api_key={GLOBEX_KEY}" if case.endswith("query") else ""
        socket = await server.socket(f"{WS}{query}", subprotocols=offer)

        assert socket.subprotocol == "onionskin", case  # selected: the handshake completes
        assert await closed_with(socket) == (4401, "invalid or missing credentials"), case
    assert server.live.hub.subscriber_count("acme") == 0


async def test_credentials_without_the_onionskin_subprotocol_are_refused(start: Start) -> None:
    server = await start()

    socket = await server.socket(WS, subprotocols=[f"bearer.{encoded(ACME_TOKEN)}"])

    assert socket.subprotocol is None  # nothing the client offered could be selected
    assert (await closed_with(socket))[0] == 4401
    assert server.live.hub.subscriber_count("acme") == 0
