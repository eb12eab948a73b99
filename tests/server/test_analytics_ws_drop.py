"""Slow WebSocket clients are dropped (close 1013) and never slow a run down.

One test uses a real client that never reads its socket; the others drive the route as an
ASGI app with a client whose sends stall, to see exactly what the route answers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.server._live_server import WS, Start, live_servers
from tests.server.conftest import Serve, acme, settings
from tests.server.test_analytics_ws import ACME_TOKEN

from onionskin.analytics import AnalyticsEvent, LiveHub
from onionskin.project import Project


@pytest.fixture
async def start(project: Project, tmp_path: Path) -> AsyncIterator[Start]:
    """`await start(settings)`: the app served by uvicorn on a free port."""
    async with live_servers(project, tmp_path) as begin:
        yield begin


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s) until `condition()` holds."""
    async with asyncio.timeout(10):
        while True:  # polled: the hub offers no event to wait on, and tests need none
            if condition():
                return
            await asyncio.sleep(0.01)


def flood(count: int, *, size: int = 0) -> list[AnalyticsEvent]:
    """`count` analytics events of acme, each carrying `size` characters."""
    return [
        AnalyticsEvent(type="flood", tenant_id="acme", data={"n": n, "blob": "x" * size})
        for n in range(count)
    ]


@asynccontextmanager
async def never_reading_client(address: str, path: str) -> AsyncIterator[socket.socket]:
    """A WebSocket handshake on a socket with a tiny receive buffer, then no reads at all."""
    loop = asyncio.get_running_loop()
    host, port = address.split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    try:
        await loop.sock_connect(raw, (host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(raw, request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += await loop.sock_recv(raw, 1)  # byte by byte: nothing past the headers
        assert answer.startswith(b"HTTP/1.1 101")
        yield raw
    finally:
        raw.close()


async def test_a_client_that_never_reads_is_dropped_and_runs_go_on(start: Start) -> None:
    server = await start(settings(ws_queue_size=4, ws_send_timeout=0.5))
    hub = server.live.hub

    async with never_reading_client(server.address, f"{WS}?token={ACME_TOKEN}"):
        await eventually(lambda: hub.subscriber_count("acme") == 1)
        events = flood(128, size=64 * 1024)  # 8 MiB: more than the socket buffers hold
        for start_at in range(0, len(events), 8):
            hub.publish(events[start_at : start_at + 8])  # never waits for the client
            await asyncio.sleep(0)
        run = await server.run("echo", "still served", acme())

        assert run["output"] == "echo: still served"
        await eventually(lambda: hub.dropped == 1)
        assert hub.subscriber_count("acme") == 0


@dataclass
class FakeSocket:
    """The client side of one ASGI WebSocket connection, whose sends can stall."""

    stall: bool = False
    sent: list[MutableMapping[str, Any]] = field(default_factory=list)
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a send is stuck (it never returns; only a timeout ends it)."""

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.send" and self.stall:
            self.stalled.set()
            await asyncio.Event().wait()
        self.sent.append(message)

    def scope(self, query: str) -> dict[str, Any]:
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": WS,
            "raw_path": WS.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver")],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "subprotocols": [],
        }


async def connected(serve: Serve, client: FakeSocket, **options: Any) -> tuple[Any, LiveHub]:
    """Start the route for `client` as acme; returns its task and the app's hub."""
    served = await serve(settings(**options))
    hub: LiveHub = served.app.state.live.hub
    client.inbox.put_nowait({"type": "websocket.connect"})
    task = asyncio.create_task(
        served.app(client.scope(f"token={ACME_TOKEN}"), client.receive, client.send)
    )
    await eventually(lambda: hub.subscriber_count("acme") == 1)
    return task, hub


async def test_a_client_that_falls_behind_is_dropped_at_once(serve: Serve) -> None:
    client = FakeSocket(stall=True)
    task, hub = await connected(serve, client, ws_queue_size=2, ws_send_timeout=60)
    try:
        hub.publish(flood(1))  # taken, then its send stalls
        await asyncio.wait_for(client.stalled.wait(), 10)
        delivered = hub.publish(flood(3))  # three behind, two allowed: dropped, no waiting

        assert delivered == 2
        assert hub.dropped == 1
        assert hub.subscriber_count("acme") == 0
    finally:
        task.cancel()


async def test_a_client_whose_send_stalls_is_closed_with_1013(serve: Serve) -> None:
    client = FakeSocket(stall=True)
    task, hub = await connected(serve, client, ws_send_timeout=0.05)

    hub.publish(flood(1))
    await asyncio.wait_for(task, 10)

    assert client.stalled.is_set()
    assert hub.dropped == 1
    assert hub.subscriber_count("acme") == 0
    assert [message["type"] for message in client.sent] == ["websocket.accept", "websocket.close"]
    assert client.sent[-1]["code"] == 1013


async def test_a_client_that_leaves_is_unsubscribed(serve: Serve) -> None:
    client = FakeSocket()
    task, hub = await connected(serve, client)

    hub.publish(flood(2))
    await eventually(lambda: len(client.sent) == 2)
    client.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)

    assert hub.subscriber_count("acme") == 0
    assert hub.dropped == 0
    assert [message["type"] for message in client.sent] == ["websocket.accept", "websocket.send"]
    assert '"n":0' in client.sent[1]["text"]
    assert '"n":1' in client.sent[1]["text"]


async def test_clients_are_closed_with_1001_when_the_server_stops(serve: Serve) -> None:
    client = FakeSocket()
    task, hub = await connected(serve, client)

    hub.close()  # what the app's lifespan does on shutdown
    await asyncio.wait_for(task, 10)

    assert client.sent[-1]["type"] == "websocket.close"
    assert client.sent[-1]["code"] == 1001
