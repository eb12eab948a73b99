"""`onionskin.server.sse`: frames, chunks of ready frames, pings, the end of the body, closing.

The run is a hand-written async generator of events here, the response a raw ASGI call, so
that what is written, and in how many messages, is seen exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Any, TypedDict

import pydantic_core
import pytest
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from tests.server.conftest import LEAK, frames

from onionskin.core.events import (
    CallFailed,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    TextDelta,
)
from onionskin.server.sse import EventStreamResponse, json_value, run_event_stream, sse_frame


class Ids(TypedDict):
    """The run and tenant of every event here."""

    run_id: str
    tenant_id: str


IDS: Ids = {"run_id": "run-1", "tenant_id": "acme"}


def started() -> RunStarted:
    return RunStarted(**IDS, pipeline_id="assistant")


def delta(text: str) -> TextDelta:
    return TextDelta(**IDS, agent="assistant", text=text)


def completed() -> RunCompleted:
    return RunCompleted(
        **IDS,
        output="done",
        stopped=False,
        input_tokens=1,
        output_tokens=2,
        cost_usd=Decimal("0.01"),
        duration_ms=1.0,
    )


async def ready(*events: RunEvent) -> AsyncGenerator[RunEvent, None]:
    """A run whose events are all ready at once: it never waits between them."""
    for event in events:
        yield event


class Client:
    """The ASGI side of one response: what was sent, and a disconnect the test triggers."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.leave = asyncio.Event()
        self.got_body = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body":
            self.got_body.set()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def text(self) -> str:
        return b"".join(m["body"] for m in self.bodies).decode()


async def respond(events: AsyncGenerator[RunEvent, None], client: Client, **options: Any) -> None:
    """Run one event-stream response of `events` (after `started()`) to `client`."""
    options.setdefault("ping_seconds", 3600)
    options.setdefault("on_event", lambda event: None)
    stream = run_event_stream(events, started(), **options)
    response = EventStreamResponse(stream)
    await response({"type": "http"}, client.receive, client.send)  # type: ignore[arg-type]


@dataclasses.dataclass
class Point:
    x: int
    label: str


class Opaque:
    def __str__(self) -> str:
        return "opaque thing"


def test_a_frame_is_what_formatting_the_json_value_gave() -> None:
    data = {
        "text": 'two\nlines\r\nand a \u2028 separator, ünïcode, "quotes"',
        "cost_usd": Decimal("0.000123"),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "raw": b"bytes",
        "point": Point(1, "a"),
        "items": ("a", 1, None, 2.5, True),
        "opaque": Opaque(),
        "nested": {"n": [1, {"m": Decimal(2)}]},
    }
    before = pydantic_core.to_json(json_value(data)).decode()

    frame = sse_frame(7, "call_finished", data)

    assert frame == format_sse_event(data_str=before, event="call_finished", id="7")
    assert frame.count(b"\n") == 4  # event, data, id, and the blank line: one data line


async def test_events_that_are_ready_together_go_out_in_one_write_that_ends_the_body() -> None:
    client = Client()

    await respond(ready(delta("a"), delta("b"), completed()), client)

    assert [m["type"] for m in client.messages] == ["http.response.start", "http.response.body"]
    [body] = client.bodies
    assert body["more_body"] is False
    events = frames(client.text)
    assert [f.event for f in events] == ["run_started", "text_delta", "text_delta", "run_completed"]
    assert [f.id for f in events] == ["1", "2", "3", "4"]
    assert [f.data.get("text") for f in events[1:3]] == ["a", "b"]


async def test_events_that_come_apart_go_out_apart_in_order() -> None:
    client = Client()
    gate = asyncio.Event()

    async def two_bursts() -> AsyncGenerator[RunEvent, None]:
        yield delta("a")
        await gate.wait()
        yield delta("b")
        yield completed()

    response = asyncio.create_task(respond(two_bursts(), client))
    await client.got_body.wait()  # the first burst went out while the run waited
    gate.set()
    await response

    bodies = client.bodies
    assert len(bodies) == 2
    assert [f.event for f in frames(bodies[0]["body"].decode())] == ["run_started", "text_delta"]
    assert bodies[0]["more_body"] is True
    assert [f.id for f in frames(client.text)] == ["1", "2", "3", "4"]
    assert bodies[-1]["more_body"] is False


async def test_a_quiet_run_gets_pings_between_its_frames() -> None:
    gate = asyncio.Event()

    async def quiet() -> AsyncGenerator[RunEvent, None]:
        yield delta("a")
        await gate.wait()  # a long model call
        yield completed()

    stream = run_event_stream(quiet(), started(), ping_seconds=0.01, on_event=lambda e: None)
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        if chunk == KEEPALIVE_COMMENT:
            gate.set()
    await stream.aclose()

    assert KEEPALIVE_COMMENT in chunks
    text = b"".join(chunks).decode()
    assert text.index(": ping") > text.index("event: text_delta")
    assert text.index(": ping") < text.index("event: run_completed")
    assert [f.id for f in frames(text)] == ["1", "2", "3"]
    assert stream.finished


async def test_the_ping_waits_for_a_quiet_period_counted_from_the_last_chunk() -> None:
    hold = asyncio.Event()

    async def never() -> AsyncGenerator[RunEvent, None]:
        await hold.wait()
        yield delta("never")

    stream = run_event_stream(never(), started(), ping_seconds=3600, on_event=lambda e: None)
    assert b"run_started" in await anext(stream)  # a chunk went out: the quiet period starts
    following = asyncio.ensure_future(anext(stream))

    stream._tick()  # the timer that was set before that chunk: not quiet long enough yet
    for _ in range(5):
        await asyncio.sleep(0)
    assert not following.done()
    stream._tick()  # ping_seconds after the chunk

    assert await following == KEEPALIVE_COMMENT
    await stream.aclose()


async def test_every_event_reaches_on_event_and_a_failure_frame_comes_from_the_exception() -> None:
    seen: list[RunEvent] = []
    failed = RunFailed(**IDS, error_type="RuntimeError", error=LEAK, duration_ms=5.0)
    call_failed = CallFailed(
        **IDS,
        kind="model",
        name="m",
        call_id="c",
        duration_ms=1.0,
        error_type="RuntimeError",
        error=LEAK,
    )

    async def failing() -> AsyncGenerator[RunEvent, None]:
        yield call_failed
        yield failed
        raise RuntimeError(LEAK)

    client = Client()
    await respond(failing(), client, on_event=seen.append)

    assert seen == [call_failed, failed]
    events = frames(client.text)
    assert [f.event for f in events] == ["run_started", "call_failed", "run_failed"]
    last = events[-1].data
    assert (last["status"], last["error_type"], last["duration_ms"]) == (500, "ServerError", 5.0)
    assert LEAK not in client.text


async def test_a_client_that_leaves_ends_the_response_quietly_and_cancels_the_run() -> None:
    cancelled = asyncio.Event()

    async def endless() -> AsyncGenerator[RunEvent, None]:
        yield delta("a")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield completed()

    client = Client()
    response = asyncio.create_task(respond(endless(), client))
    await client.got_body.wait()
    client.leave.set()
    await response  # no exception: the client's leaving is not an error

    assert cancelled.is_set()
    assert "run_completed" not in client.text


async def test_a_server_that_cancels_the_response_cancels_the_run_too() -> None:
    cancelled = asyncio.Event()

    async def endless() -> AsyncGenerator[RunEvent, None]:
        yield delta("a")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield completed()

    client = Client()
    response = asyncio.create_task(respond(endless(), client))
    await client.got_body.wait()
    response.cancel()  # the server shutting down

    with pytest.raises(asyncio.CancelledError):
        await response
    assert cancelled.is_set()
