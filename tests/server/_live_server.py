"""Real servers for the WebSocket tests: uvicorn in this loop, or `onionskin serve` processes.

A WebSocket needs a real connection (the in-process HTTP transport speaks HTTP only), so
these start uvicorn on a free loopback port and hand back its address.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from fastapi import FastAPI
from tests.server.conftest import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from onionskin.project import Project
from onionskin.server import ServerSettings, create_app
from onionskin.server.routes._live import LiveAnalytics

WS = "/api/v1/ws/analytics"

STARTUP_SECONDS = 20.0


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` (its lifespan included) on a free port; yields `host:port`."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not server.started:
                if task.done():
                    task.result()  # start-up failed: its error
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def serve_processes(
    project: Path, count: int, *, db: str, environ: Mapping[str, str], logs: Path
) -> AsyncIterator[list[str]]:
    """`count` processes of `onionskin serve PROJECT --port P --db DB`, each on its own port.

    They start side by side; yields their addresses once every one answers. Each writes
    its log to `logs/server-N.log`, quoted when it exits before listening.
    """
    async with AsyncExitStack() as stack:
        started = []
        for number in range(count):
            log = stack.enter_context((logs / f"server-{number}.log").open("wb"))
            port = free_port()
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "onionskin", "serve", str(project)),
                *("--port", str(port), "--db", db),
                env={**os.environ, **environ},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
            stack.push_async_callback(_stop, process)
            started.append((process, f"127.0.0.1:{port}", logs / f"server-{number}.log"))
        await asyncio.gather(*(_until_listening(*server) for server in started))
        yield [address for _, address, _ in started]


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def _until_listening(process: asyncio.subprocess.Process, address: str, log: Path) -> None:
    async with httpx2.AsyncClient(base_url=f"http://{address}") as client:
        async with asyncio.timeout(STARTUP_SECONDS):
            while process.returncode is None:
                try:
                    if (await client.get("/openapi.json")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await asyncio.sleep(0.05)
    output = await asyncio.to_thread(log.read_text)
    raise RuntimeError(f"the server at {address} exited: {output}")


class Live:
    """A server on a real port: WebSocket clients and HTTP requests to it."""

    def __init__(self, address: str, app: FastAPI, stack: AsyncExitStack) -> None:
        self.address = address
        self.app = app
        self._stack = stack
        self.http = httpx2.AsyncClient(base_url=f"http://{address}")

    @property
    def live(self) -> LiveAnalytics:
        live: LiveAnalytics = self.app.state.live
        return live

    async def socket(
        self, path: str = WS, *, subprotocols: list[str] | None = None, **headers: str
    ) -> ClientConnection:
        offered = None if subprotocols is None else [Subprotocol(name) for name in subprotocols]
        return await self._stack.enter_async_context(
            connect(
                f"ws://{self.address}{path}",
                proxy=None,
                additional_headers=headers or None,
                subprotocols=offered,
            )
        )

    async def run(self, name: str, text: str, headers: dict[str, str]) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v1/pipelines/{name}/execute", json={"input": text}, headers=headers
        )
        body: dict[str, Any] = response.json()
        return body


Start = Callable[..., Awaitable[Live]]


@asynccontextmanager
async def live_servers(project: Project, tmp_path: Path) -> AsyncIterator[Start]:
    """`await begin(settings)`: `project`'s app served by uvicorn on a free port."""
    async with AsyncExitStack() as stack:

        async def begin(server_settings: ServerSettings | None = None) -> Live:
            app = create_app(
                project, server_settings or settings(), database_url=f"sqlite:///{tmp_path}/l.db"
            )
            address = await stack.enter_async_context(running(app))
            live = Live(address, app, stack)
            await stack.enter_async_context(live.http)
            return live

        yield begin


async def take_events(
    socket: ClientConnection, *, until_type: str, run_id: str | None = None, count: int = 1
) -> list[dict[str, Any]]:
    """Events from `socket` until `count` of type `until_type` (of `run_id`, if given) came.

    Each message must be a JSON array of events; the events of the last one are all kept.
    """
    taken: list[dict[str, Any]] = []

    def matches(event: dict[str, Any]) -> bool:
        return event["type"] == until_type and (run_id is None or event["run_id"] == run_id)

    async with asyncio.timeout(10):
        while sum(map(matches, taken)) < count:
            batch = json.loads(await socket.recv())
            assert isinstance(batch, list)
            taken.extend(batch)
    return taken
