"""`TimeoutMiddleware`: cancel a model or tool call that runs longer than its timeout.

The call runs under `asyncio.timeout`: when time is up the callee is really cancelled (it
sees `asyncio.CancelledError` at its current `await`, and its `finally` blocks run), then
the caller gets `GuardTimeoutError(target, timeout)` chained from the `TimeoutError`.
A `TimeoutError` the callee raises by itself passes through unchanged.

A sync function runs in a worker thread (`asyncio.to_thread`), and a thread cannot be
interrupted: at the timeout the caller stops waiting and gets `GuardTimeoutError` at once,
while the thread runs on in the background until the function returns; its result, or its
exception, is discarded. Side effects of such a function still happen, after the timeout.
Keep sync tools short, or make them async so that cancellation reaches them.

The deadline is the event loop's real time, not the injected `Clock`: cancelling a call
needs the loop's timer, which a fake clock cannot drive.

A timer can only fire while the event loop runs, so a call that finishes without ever
suspending (a guard on a memory store, a cached answer) cannot time out. The callee's
first step is therefore run at once, and `asyncio.timeout` (whose timer is the guard's
main cost) is armed only when that step suspends, with the deadline taken before the
call started: the callee is then cancelled exactly as it would have been.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, TypeVar

from onionskin.core.calls import ModelRequest, ToolCall
from onionskin.core.errors import ConfigError, GuardTimeoutError
from onionskin.middleware._config import require_positive

R = TypeVar("R")
C = TypeVar("C", ModelRequest, ToolCall)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutConfig:
    """How long a model or tool call may run before it is cancelled."""

    seconds: float = 60.0
    """The timeout of every call, unless a per-kind timeout below overrides it."""
    model_seconds: float | None = None
    """The timeout of model calls; None: `seconds`."""
    tool_seconds: float | None = None
    """The timeout of tool calls; None: `seconds`."""

    def __post_init__(self) -> None:
        require_positive("TimeoutConfig", "seconds", self.seconds)
        for field in ("model_seconds", "tool_seconds"):
            value = getattr(self, field)
            if value is not None:
                require_positive("TimeoutConfig", field, value)


_SENT = object()
"""Stands for the first step's value once it has been handed to the task."""


class _Resumed:
    """The rest of a coroutine whose first step already ran and yielded `first`.

    `await _Resumed(coro, first)` hands `first` to the task, then forwards every send, throw
    and close to `coro`, as `await coro` would have from the start (PEP 380).
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: CoroutineType[Any, Any, Any], first: object) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        # Any: what a coroutine yields to its task and gets back belongs to the event loop.
        return self  # an iterator with send, throw and close, as the protocol asks

    def __iter__(self) -> _Resumed:  # pragma: no cover - the protocol asks; await never calls it
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        """Yield the first step's value once, then pass what the task sends to the callee."""
        first = self._first
        if first is not _SENT:
            self._first = _SENT
            return first
        return self._coro.send(value)

    def throw(self, error: Any, value: Any = None, traceback: Any = None) -> Any:
        """Raise `error` (a cancellation, usually) inside the callee, at its `await`."""
        if value is None and traceback is None:
            return self._coro.throw(error)
        return self._coro.throw(error, value, traceback)  # the old form, passed on as it came

    def close(self) -> None:
        """Close the callee, as closing the awaiting coroutine would."""
        self._coro.close()


def _target(call: ModelRequest | ToolCall) -> str:
    """What a timeout error names: `model 'name'` or `tool 'name'`."""
    if isinstance(call, ModelRequest):
        return f"model {call.model.name!r}"
    return f"tool {call.tool_name!r}"


class TimeoutMiddleware:
    """Cancels model and tool calls that exceed their timeout, raising `GuardTimeoutError`."""

    def __init__(self, config: TimeoutConfig | None = None) -> None:
        if config is not None and not isinstance(config, TimeoutConfig):
            raise ConfigError(f"config must be a TimeoutConfig, got {config!r}")
        self.config = config or TimeoutConfig()
        seconds = self.config.seconds
        self._model_seconds = self.config.model_seconds or seconds
        self._tool_seconds = self.config.tool_seconds or seconds

    async def wrap_tool_call(self, call: C, next: Callable[[C], Awaitable[R]]) -> R:
        """Call the model or tool; cancel it after `model_seconds` or `tool_seconds`."""
        # One method serves both kinds, so a call that never waits costs this coroutine only.
        is_model = isinstance(call, ModelRequest)  # named: mypy checks each kind of C alone
        seconds = self._model_seconds if is_model else self._tool_seconds
        when = asyncio.get_running_loop().time() + seconds
        awaitable: Awaitable[R] = next(call)
        if type(awaitable) is CoroutineType:
            # The fast path (see the module docstring): no timer for a call that never waits.
            coro: CoroutineType[Any, Any, R] = awaitable
            try:
                first = coro.send(None)
            except StopIteration as done:
                result: R = done.value
                return result
            awaitable = _Resumed(coro, first)
        deadline = asyncio.timeout_at(when)
        try:
            async with deadline:
                return await awaitable
        except TimeoutError as error:
            if not deadline.expired():
                raise  # the callee's own TimeoutError, not ours
            raise GuardTimeoutError(_target(call), seconds) from error

    wrap_model_call = wrap_tool_call
