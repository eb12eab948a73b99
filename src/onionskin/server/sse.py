"""A run's events as Server-Sent Events: one `event: <type>` frame per event, in order.

Each frame carries the event's JSON (`data:`) and a sequence number (`id:`). The stream ends
with `run_completed` or `run_failed`; a failure frame is rebuilt from the run's exception
through `onionskin.server.errors`, with the same status, code and detail the JSON form
would answer, so a stream leaks no more than an error response does (the raw `RunFailed`
carries the exception's own text). Failed calls' messages are filtered the same way.

While a run is quiet (a long model call), a `: ping` comment goes out every
`ping_seconds`, so that proxies keep the connection open. A client that disconnects cancels
the run: `EventStreamResponse` always listens for the disconnect, whatever the server's
ASGI version (Starlette stops listening from ASGI 2.4 on and would only notice at the next
write, which could be minutes of model calls later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from itertools import count
from typing import Any

import anyio
import pydantic_core
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from starlette.types import Receive, Scope, Send

from onionskin.core.events import CallFailed, RunEvent, RunFailed
from onionskin.server.errors import problem_for, public_error

logger = logging.getLogger("onionskin.server")


def json_value(value: Any) -> Any:
    """`value` as JSON-ready data (JSON: Any); unknown objects become their `str()`."""
    return pydantic_core.to_jsonable_python(value, fallback=str)


class EventStreamResponse(EventSourceResponse):
    """A `text/event-stream` response that stops its stream when the client disconnects.

    Args:
        content: the frames.
        on_close: awaited once the response ends, however it ends (closes the run's event
            iterator even when the client left before the first frame was sent).
        headers: extra response headers.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, headers=headers)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream until it ends or the client disconnects, then close the run."""
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()  # the client left: cancel the stream and its run
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._content, "aclose", None)
                if aclose is not None:
                    await aclose()
                await self._on_close()


def _frame(sequence: int, kind: str, data: dict[str, Any]) -> bytes:
    text = pydantic_core.to_json(json_value(data)).decode()
    return format_sse_event(data_str=text, event=kind, id=str(sequence))


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


async def run_event_stream(
    events: AsyncGenerator[RunEvent, None],
    started: RunEvent,
    *,
    ping_seconds: float,
    on_event: Callable[[RunEvent], None],
) -> AsyncIterator[bytes]:
    """The SSE frames of a run whose first event, `started`, was already taken.

    `on_event` sees every event as the run emitted it (the raw `RunFailed` included).
    Closing this iterator (a disconnect) cancels the run.
    """
    sequence = count(1)
    yield _frame(next(sequence), started.type, _event_data(started))
    failed: RunFailed | None = None
    pending: asyncio.Future[RunEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=ping_seconds)
            if not done:
                yield KEEPALIVE_COMMENT
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            except Exception as error:
                yield _frame(next(sequence), RunFailed.type, _failure(error, started, failed))
                return
            on_event(event)
            if isinstance(event, RunFailed):
                failed = event  # the run's exception comes next: the frame is built from it
                continue
            yield _frame(next(sequence), event.type, _event_data(event))
    finally:
        # Shielded: a disconnect cancels this task, and the run must still be cancelled
        # and awaited (its own cleanup, a checkpoint, runs) before the generator closes.
        with anyio.CancelScope(shield=True):
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
            await events.aclose()
