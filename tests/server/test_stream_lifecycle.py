"""An event stream over raw ASGI: a client that leaves cancels the run; idle streams ping."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from tests.server.conftest import Models, Serve, acme, frames, settings

from onionskin.core.events import RunEvent
from onionskin.stores.sql_checkpoints import SqlCheckpointStore


class Client:
    """One HTTP request to an ASGI app, with a disconnect the test triggers."""

    def __init__(self, app: FastAPI, path: str, body: dict[str, Any]) -> None:
        self.app = app
        self.path = path
        self.body = json.dumps(body).encode()
        self.body_sent = False
        self.leave = asyncio.Event()
        self.messages: list[dict[str, Any]] = []
        self.pinged = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if b": ping" in message.get("body", b""):
            self.pinged.set()

    def start(self) -> asyncio.Task[None]:
        headers = [(k.lower().encode(), v.encode()) for k, v in acme().items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        return asyncio.create_task(self.app(scope, self.receive, self.send))  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.messages).decode()


async def test_a_client_that_disconnects_cancels_the_run(serve: Serve, models: Models) -> None:
    seen: list[RunEvent] = []
    server = await serve(event_sinks=[seen.append])
    client = Client(server.app, "/api/v1/pipelines/slow/execute", {"input": "x", "stream": True})

    request = client.start()
    await models.entered.wait()  # the model call is under way
    client.leave.set()
    await asyncio.wait_for(request, timeout=10)

    assert models.cancelled
    sent = [f.event for f in frames(client.text)]
    assert sent[0] == "run_started"
    assert "run_completed" not in sent
    assert not any(e.type in ("run_completed", "run_failed") for e in seen)
    # The run's checkpoints stop where it was cancelled: no end checkpoint says it completed.
    store = server.runner.checkpoints
    assert isinstance(store, SqlCheckpointStore)
    [run] = await store.list_runs(tenant_id="acme")
    assert run.status != "completed"


async def test_an_idle_stream_sends_pings_until_the_run_ends(serve: Serve, models: Models) -> None:
    server = await serve(settings(sse_ping_seconds=0.01))
    client = Client(server.app, "/api/v1/pipelines/slow/execute", {"input": "x", "stream": True})

    request = client.start()
    await client.pinged.wait()  # the model is still waiting: a ping went out meanwhile
    models.release.set()
    await request

    events = frames(client.text)
    assert events[-1].event == "run_completed"
    assert events[-1].data["output"] == "released"
    assert not models.cancelled


async def test_a_json_request_is_not_cancelled_by_the_stream_machinery(
    serve: Serve, models: Models
) -> None:
    server = await serve()
    client = Client(server.app, "/api/v1/pipelines/slow/execute", {"input": "x"})

    request = client.start()
    await models.entered.wait()
    models.release.set()
    await request

    assert json.loads(client.text)["output"] == "released"
