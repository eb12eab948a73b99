"""Run the async guard pipeline for sync callers: one event loop in a daemon thread.

A guarded sync function must stay callable from sync code, even from code that is itself
running inside an event loop (where `asyncio.run` is refused). One long-lived loop per
process serves every sync caller: starting a loop per call would cost more than the guards,
and stores that hold connections (Redis) stay on one loop. The caller's contextvars (run
context, request metadata) travel with the submitted coroutine.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from onionskin.core.errors import OnionskinError

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=serve, name="onionskin-guards", daemon=True).start()
    ready.wait()
    return loop


def _guard_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = _start_loop()
        return _loop


def _forget_loop_in_child() -> None:
    # A forked child has the loop object but not its thread: start a fresh one on demand.
    global _loop
    _loop = None


os.register_at_fork(after_in_child=_forget_loop_in_child)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on the guard loop and block until it finishes; returns its result."""
    loop = _guard_loop()
    if loop is _running_loop():
        coroutine.close()
        raise OnionskinError(
            "a guarded sync function was called from the guard loop itself (from a sync hook "
            "of a guarded call); make the hook async and await the guarded function's "
            "`acall()` instead"
        )
    context = contextvars.copy_context()

    async def in_callers_context() -> T:
        # Tasks copy the context current when they are created; run ours in the caller's.
        task = loop.create_task(coroutine, context=context)
        return await task

    future = asyncio.run_coroutine_threadsafe(in_callers_context(), loop)
    return future.result()
