"""`BaseMiddleware`: every hook with a pass-through default, so you override only what you use.

A middleware is any object with some of the hook methods below (sync or async), or a plain
function `async def mw(call, next)` that wraps tool calls (seed 001's onion form). Hooks a
middleware does not override cost nothing: the chain of a call kind only holds layers
whose middleware has a hook for that kind.

| kind     | onion method      | before hook                         | after hook                  |
|----------|-------------------|-------------------------------------|-----------------------------|
| pipeline | `wrap_pipeline`   | `before_pipeline(context)`          | `after_pipeline(ctx, r)`    |
| agent    | `wrap_agent`      | `before_agent(context, agent_name)` | `after_agent(ctx, name, r)` |
| model    | `wrap_model_call` | `before_model(context, request)`    | `after_model(ctx, req, r)`  |
| tool     | `wrap_tool_call`  | `before_tool(context, call)`        | `after_tool(ctx, call, r)`  |

An after hook returns None to keep the result, or a value to replace it.
`before_model` and `before_tool` may return a replacement request. `on_error(context, error)`
runs, in reverse registration order, when the run fails; the error then reaches the caller
unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from onionskin.core.calls import (
    AgentCall,
    AgentResult,
    CallKind,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    ToolCall,
    ToolResult,
)
from onionskin.core.context import RunContext

WRAP_METHODS: Final[dict[CallKind, str]] = {
    "pipeline": "wrap_pipeline",
    "agent": "wrap_agent",
    "model": "wrap_model_call",
    "tool": "wrap_tool_call",
}
BEFORE_HOOKS: Final[dict[CallKind, str]] = {
    "pipeline": "before_pipeline",
    "agent": "before_agent",
    "model": "before_model",
    "tool": "before_tool",
}
AFTER_HOOKS: Final[dict[CallKind, str]] = {
    "pipeline": "after_pipeline",
    "agent": "after_agent",
    "model": "after_model",
    "tool": "after_tool",
}
HOOK_NAMES: Final[frozenset[str]] = frozenset(
    [*WRAP_METHODS.values(), *BEFORE_HOOKS.values(), *AFTER_HOOKS.values(), "on_error"]
)

# A hook may be sync or async: it returns its value or an awaitable of it.
Maybe = Awaitable[Any] | Any


class BaseMiddleware:
    """A middleware with every hook; each default passes through and costs nothing.

    Subclass it and override the hooks you need, as sync or async methods (seed 000).
    Keep per-call state in locals, never on `self`: one instance serves concurrent runs.
    """

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the middleware's class (seed 000 uses `self.logger`)."""
        cls = type(self)
        return logging.getLogger(f"{cls.__module__}.{cls.__qualname__}")

    def before_pipeline(self, context: RunContext) -> Awaitable[None] | None:
        """Called before the pipeline starts executing."""
        return None

    def after_pipeline(
        self, context: RunContext, result: PipelineResult
    ) -> Awaitable[PipelineResult | None] | PipelineResult | None:
        """Called after the pipeline completes; return a result to replace it."""
        return None

    def on_error(self, context: RunContext, error: BaseException) -> Awaitable[None] | None:
        """Called when the run fails; the error reaches the caller afterwards, unchanged."""
        return None

    def before_agent(self, context: RunContext, agent_name: str) -> Awaitable[None] | None:
        """Called before each agent starts executing."""
        return None

    def after_agent(
        self, context: RunContext, agent_name: str, result: AgentResult
    ) -> Awaitable[AgentResult | None] | AgentResult | None:
        """Called after each agent completes successfully; return a result to replace it."""
        return None

    def before_model(
        self, context: RunContext, request: ModelRequest
    ) -> Awaitable[ModelRequest | None] | ModelRequest | None:
        """Called before each model call; return a request to replace it."""
        return None

    def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> Awaitable[ModelResponse | None] | ModelResponse | None:
        """Called after each model call; return a response to replace it."""
        return None

    def before_tool(
        self, context: RunContext, call: ToolCall
    ) -> Awaitable[ToolCall | None] | ToolCall | None:
        """Called before each tool call; return a call to replace it."""
        return None

    def after_tool(
        self, context: RunContext, call: ToolCall, result: ToolResult
    ) -> Awaitable[ToolResult | None] | ToolResult | None:
        """Called after each tool call; return a result to replace it."""
        return None

    async def wrap_pipeline(
        self, call: PipelineCall, next: Callable[[PipelineCall], Awaitable[PipelineResult]]
    ) -> PipelineResult:
        """Wrap the whole run (onion form): call `next` or answer without it."""
        return await next(call)

    async def wrap_agent(
        self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        """Wrap one agent's turn (onion form)."""
        return await next(call)

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Wrap one model call (onion form)."""
        return await next(request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Wrap one tool call (onion form)."""
        return await next(call)


def overridden_hook(middleware: object, name: str) -> Callable[..., Any] | None:
    """Return `middleware`'s bound hook `name`, or None when absent or BaseMiddleware's default.

    Callable[..., Any]: hooks of different kinds have different signatures.
    """
    hook = getattr(middleware, name, None)
    if hook is None or not callable(hook):
        return None
    default = getattr(BaseMiddleware, name, None)
    if default is not None and getattr(type(middleware), name, None) is default:
        return None
    return hook  # type: ignore[no-any-return]  # getattr on an arbitrary object
