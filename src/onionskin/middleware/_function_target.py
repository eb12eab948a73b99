"""A plain Python function as the target of a tool call, for guards outside an agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from onionskin.core._layers import is_async_callable
from onionskin.core.calls import ToolCall, ToolResult


class FunctionTarget:
    """Runs one function for a `ToolCall`: async functions awaited, sync ones in a thread.

    It has the `ToolLike` shape (`name`, `invoke`) and exposes `function`, like a runtime
    `Tool`, so guards that read the function's signature work on both.
    """

    __slots__ = ("_is_async", "function", "name")

    def __init__(self, function: Callable[..., Any], name: str | None = None) -> None:
        self.function = function
        self.name: str = name or getattr(function, "__name__", None) or type(function).__name__
        self._is_async = is_async_callable(function)

    async def invoke(self, call: ToolCall) -> ToolResult:
        """Call the function with the call's arguments; its exceptions propagate unchanged."""
        started = time.perf_counter()
        if self._is_async:
            value = await self.function(*call.args, **call.kwargs)
        else:
            # A worker thread keeps the event loop free and lets a timeout stop waiting.
            value = await asyncio.to_thread(self.function, *call.args, **call.kwargs)
        return ToolResult(
            tool_name=call.tool_name,
            value=value,
            execution_time_ms=(time.perf_counter() - started) * 1000.0,
            call_id=call.call_id,
        )
