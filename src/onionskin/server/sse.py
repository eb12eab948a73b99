"""A run's events as Server-Sent Events: one `event: <type>` frame per event, in order.

Each frame carries the event's JSON (`data:`) and a sequence number (`id:`). The stream ends
with `run_completed` or `run_failed`; a failure frame is rebuilt from the run's exception
through `onionskin.server.errors`, with the same status, code and detail the JSON form
would answer, so a stream leaks no more than an error response does (the raw `RunFailed`
carries the exception's own text). Failed calls' messages are filtered the same way.

Frames that are ready together go out together: one task per stream reads the run's events
into a buffer, and the response writes whatever the buffer holds in one ASGI message each
time it gets to write (a run's events mostly come in bursts, and every write is a system
call and a TCP segment), the last of them with the end of the body.

While a run is quiet (a long model call), a `: ping` comment goes out every
`ping_seconds`, so that proxies keep the connection open; one timer per stream checks for
that, not one per event. A client that disconnects cancels the run: `EventStreamResponse`
always listens for the disconnect, whatever the server's ASGI version (Starlette stops
listening from ASGI 2.4 on and would only notice at the next write, which could be minutes
of model calls later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import anyio
import pydantic_core
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse
from starlette.types import Receive, Scope, Send

from onionskin.core.events import CallFailed, RunEvent, RunFailed
from onionskin.server.errors import problem_for, public_error

logger = logging.getLogger("onionskin.server")


def json_value(value: Any) -> Any:
    """`value` as JSON-ready data (JSON: Any); unknown objects become their `str()`."""
    return pydantic_core.to_jsonable_python(value, fallback=str)


def sse_frame(sequence: int, kind: str, data: dict[str, Any]) -> bytes:
    """One SSE frame: `event: kind`, `data:` the JSON of `data` (Any: JSON), `id: sequence`.

    `to_json` writes the frame's JSON at once (unknown objects as their `str()`, as
    `json_value` would), and its output is one line (newlines in strings are escaped), so
    the frame needs no splitting into `data:` lines.
    """
    payload = pydantic_core.to_json(data, fallback=str)
    return b"event: %b\ndata: %b\nid: %d\n\n" % (kind.encode(), payload, sequence)


def _event_data(event: RunEvent) -> dict[str, Any]:
    data = event.to_dict()
    if isinstance(event, CallFailed):
        data["error"] = public_error(event.error_type, event.error)
    return data


def _failure(error: BaseException, started: RunEvent, failed: RunFailed | None) -> dict[str, Any]:
    problem = problem_for(error)
    if problem.status >= 500:
        logger.error("run %s failed", started.run_id, exc_info=error)
    return {
        "type": RunFailed.type,
        "run_id": started.run_id,
        "tenant_id": started.tenant_id,
        "timestamp": failed.timestamp if failed else started.timestamp,
        "duration_ms": failed.duration_ms if failed else 0.0,
        "error_type": type(error).__name__ if problem.public else "ServerError",
        "error": problem.detail,
        "status": problem.status,
        "code": problem.code,
        **problem.extra,
    }


class RunEventStream:
    """The SSE frames of a run whose first event, `started`, was already taken.

    An async iterator of byte chunks: each chunk holds every frame that was ready when it
    was asked for (or is one `: ping` comment), and `finished` is true once the chunk just
    given was the last one. The run's events are read by a task of its own, from `start()`
    (or the first `__anext__`) on, so that pings can go out while it waits for the next one.

    Args:
        events: the run's events after `started`; `aclose()` closes it, cancelling the run.
        started: the run's first event (`run_started`), the frame with `id: 1`.
        ping_seconds: how long the stream may stay quiet before a `: ping` goes out.
        on_event: sees every event as the run emitted it (the raw `RunFailed` included).
    """

    def __init__(
        self,
        events: AsyncGenerator[RunEvent, None],
        started: RunEvent,
        *,
        ping_seconds: float,
        on_event: Callable[[RunEvent], None],
    ) -> None:
        self._events = events
        self._started = started
        self._ping_seconds = ping_seconds
        self._on_event = on_event
        self._sequence = 1
        self._frames = [sse_frame(1, started.type, _event_data(started))]
        self._done = False  # the reader has stopped: nothing joins the buffer any more
        self.finished = False
        """True once the last chunk was given: the response ends its body with it."""
        self._wakeup: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ping_due = False
        self._wrote = False  # a chunk went out since the ping timer was last set
        self._last_write = 0.0

    def __aiter__(self) -> RunEventStream:
        """The stream is its own iterator."""
        return self

    async def __anext__(self) -> bytes:
        """The frames ready now, waiting for some (or for a ping) when there are none."""
        if self._reader is None:
            self.start()
        while not self._frames:
            if self._done:
                raise StopAsyncIteration
            if self._ping_due:
                self._ping_due = False
                return KEEPALIVE_COMMENT
            await self._wait()
        chunk = b"".join(self._frames)
        self._frames.clear()
        self.finished = self._done
        self._wrote = True
        self._last_write = asyncio.get_running_loop().time()
        return chunk

    async def aclose(self) -> None:
        """Stop reading; a run still going (its client left) is cancelled and awaited.

        Call it shielded from cancellation: the run's own cleanup (a checkpoint) must run
        before the stream is gone.
        """
        if self._timer is not None:
            self._timer.cancel()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._events.aclose()

    def start(self) -> None:
        """Start reading the run's events (and the ping timer); needs a running loop."""
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read())
        self._last_write = loop.time()
        self._timer = loop.call_later(self._ping_seconds, self._tick)

    async def _read(self) -> None:
        """Turn the run's events into frames, in the buffer, until the run ends."""
        failed: RunFailed | None = None
        try:
            async for event in self._events:
                self._on_event(event)
                if isinstance(event, RunFailed):
                    failed = event  # the run's exception comes next: the frame is built from it
                    continue
                self._push(event.type, _event_data(event))
        except Exception as error:
            self._push(RunFailed.type, _failure(error, self._started, failed))
        finally:
            self._done = True
            self._wake()

    def _push(self, kind: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        self._frames.append(sse_frame(self._sequence, kind, data))
        self._wake()

    async def _wait(self) -> None:
        """Until the reader adds a frame or stops, or a ping is due."""
        self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None

    def _wake(self) -> None:
        # Resolved once per wait, however many frames arrive: the waiting iterator resumes
        # only after the reader has taken every event that was ready, so they share a chunk.
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _tick(self) -> None:
        """The ping timer: a ping after `ping_seconds` without a chunk, else wait on."""
        loop = asyncio.get_running_loop()
        if self._wrote:  # the quiet period began at the last chunk: ping_seconds after it
            self._wrote = False
            self._timer = loop.call_at(self._last_write + self._ping_seconds, self._tick)
            return
        self._ping_due = True
        self._wake()
        self._timer = loop.call_later(self._ping_seconds, self._tick)


def run_event_stream(
    events: AsyncGenerator[RunEvent, None],
    started: RunEvent,
    *,
    ping_seconds: float,
    on_event: Callable[[RunEvent], None],
) -> RunEventStream:
    """The SSE frames of a run whose first event, `started`, was already taken, started.

    `on_event` sees every event as the run emitted it (the raw `RunFailed` included).
    Closing the stream (a disconnect) cancels the run. Reading starts at once: the events
    that are ready by the time the response writes its first chunk go out with `started`.
    """
    stream = RunEventStream(events, started, ping_seconds=ping_seconds, on_event=on_event)
    stream.start()
    return stream


class EventStreamResponse(EventSourceResponse):
    """A `text/event-stream` response that stops its stream when the client disconnects.

    Args:
        content: the run's frames; closed once the response ends, however it ends (even
            when the client left before the first frame was sent).
        headers: extra response headers.
    """

    def __init__(
        self, content: RunEventStream, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(content, headers=headers)
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream until it ends or the client disconnects, then close the run.

        Two plain tasks, the stream and a listener that cancels it when the client leaves:
        an anyio task group would do the same for some 30 µs more per request.
        """
        loop = asyncio.get_running_loop()
        streaming = loop.create_task(self.stream_response(send))
        listening = loop.create_task(_cancel_on_disconnect(receive, streaming))
        try:
            await streaming  # cancelling this task (the server stopping) cancels it too
        except asyncio.CancelledError:
            if not _left(listening) or _cancelling():
                raise  # the server's own cancellation goes on up; a client's leaving does not
        finally:
            listening.cancel()
            with anyio.CancelScope(shield=True):
                await self._content.aclose()

    async def stream_response(self, send: Send) -> None:
        """The headers, then each chunk of frames as it comes; the last one ends the body.

        Starlette's own version ends the body with an empty message of its own: one more
        write per run.
        """
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self._content:
            last = self._content.finished
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if last:
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: Receive, stream: asyncio.Task[None]) -> None:
    """Cancel `stream` (and so its run) once the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.cancel()


def _left(listening: asyncio.Task[None]) -> bool:
    """True when `listening` saw the client disconnect (and so cancelled the stream)."""
    return listening.done() and not listening.cancelled() and listening.exception() is None


def _cancelling() -> bool:
    """True when the current task was asked to cancel."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
