"""A middleware limited to one agent's turns, for an agent's `middleware:` in a pipeline.

In a pipeline of several agents, the middleware `agents/a.yaml` lists must not act on
agent `b`'s model or tool calls. `AgentScoped` exposes the inner middleware's layers as
onion methods that pass straight on outside agent `a`'s turns. Its pipeline layers and
`on_error` hook act on the whole run (a run belongs to no single agent).

The inner middleware's layers are folded by the core (`compile_stack`), so its hooks keep
their exact semantics; the fold happens once per next handler, which is fixed for as long
as the orchestrator's stack does not change, and is cached by it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from weakref import WeakKeyDictionary

from onionskin.core.calls import CallKind
from onionskin.core.chain import Entry, Terminals, compile_stack, inspect_middleware
from onionskin.core.context import current_context_or_none
from onionskin.core.middleware import WRAP_METHODS

# Any: one handler type serves the four call kinds, whose requests and results differ.
Handler = Callable[[Any], Awaitable[Any]]
Wrap = Callable[[Any, Handler], Awaitable[Any]]


class AgentScoped:
    """`middleware`'s agent, model and tool layers, acting during `agent`'s turns only."""

    def __init__(self, middleware: object, agent: str) -> None:
        self.middleware = middleware
        self.agent = agent
        entry = inspect_middleware(middleware)
        for kind in entry.parts:
            setattr(self, WRAP_METHODS[kind], self._scoped_wrap(kind, entry))
        if entry.on_error is not None:
            self.on_error = entry.on_error

    def _scoped_wrap(self, kind: CallKind, entry: Entry) -> Wrap:
        inner = _folder(entry, kind)
        agent = self.agent

        async def whole_run(call: Any, nxt: Handler) -> Any:
            return await inner(nxt)(call)

        async def agent_turn(call: Any, nxt: Handler) -> Any:
            if call.agent_name != agent:
                return await nxt(call)
            return await inner(nxt)(call)

        async def in_turn(call: Any, nxt: Handler) -> Any:
            ctx = current_context_or_none()
            if ctx is None or ctx.current_agent != agent:
                return await nxt(call)
            return await inner(nxt)(call)

        if kind == "pipeline":
            return whole_run
        return agent_turn if kind == "agent" else in_turn

    def __repr__(self) -> str:
        return f"AgentScoped({self.middleware!r}, agent={self.agent!r})"


def _folder(entry: Entry, kind: CallKind) -> Callable[[Handler], Handler]:
    """`entry`'s layers of `kind` folded around a next handler, cached per next handler."""
    cache: WeakKeyDictionary[Handler, Handler] = WeakKeyDictionary()

    def fold(nxt: Handler) -> Handler:
        terminals = Terminals(pipeline=nxt, agent=nxt, model=nxt, tool=nxt)
        handler: Handler = getattr(compile_stack([entry], terminals), kind)
        return handler

    def folded(nxt: Handler) -> Handler:
        try:
            handler = cache.get(nxt)
        except TypeError:  # a handler that takes no weak reference: fold it every time
            return fold(nxt)
        if handler is None:
            handler = cache[nxt] = fold(nxt)
        return handler

    return folded
