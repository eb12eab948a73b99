"""Layer factories: each turns one middleware part and the next handler into a handler.

The chain is folded once when the stack changes (Starlette's `build_middleware_stack`), so a
call walks nested closures, never a list of middleware. Two speed choices, both measured:

* an async onion method is bound with a lambda, so a layer costs its own coroutine only;
* consecutive hook-only middleware fuse into one layer that loops over their hooks: a
  loop step is cheaper than a coroutine frame per layer, and the semantics (befores in
  order, afters reversed, an exception stops the rest) are those of the nested form.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from onionskin.core.context import current_context_or_none

# Any: one chain type serves the four call kinds, whose requests and results differ.
Handler: TypeAlias = Callable[[Any], Awaitable[Any]]
Hook: TypeAlias = Callable[..., Any]


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling `fn` returns a coroutine (async functions and async `__call__`)."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we need the method, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


@dataclass(frozen=True, slots=True)
class HookPair:
    """The before and after hooks one middleware has for one call kind."""

    before: Hook | None
    after: Hook | None


def wrap_layer(wrap: Hook, nxt: Handler) -> Handler:
    """Bind an onion method `wrap(call, next)` around `nxt`."""
    if is_async_callable(wrap):
        return lambda call: wrap(call, nxt)

    async def sync_wrap(call: Any) -> Any:
        # A sync onion function can only pass through (returning next's awaitable) or answer.
        result = wrap(call, nxt)
        if inspect.isawaitable(result):
            result = await result
        return result

    return sync_wrap


def _hook_list(hooks: Sequence[Hook | None]) -> tuple[tuple[int, Hook, bool], ...]:
    return tuple((index, hook, is_async_callable(hook)) for index, hook in enumerate(hooks) if hook)


def single_call_hooks(pair: HookPair, nxt: Handler) -> Handler:
    """One middleware's model- or tool-kind hooks: the common case, without loops."""
    before, after = pair.before, pair.after
    before_async = before is not None and is_async_callable(before)
    after_async = after is not None and is_async_callable(after)

    async def layer(call: Any) -> Any:
        ctx = current_context_or_none()
        if before is not None:
            replaced = before(ctx, call)
            if before_async:
                replaced = await replaced
            if replaced is not None:
                call = replaced
        result = await nxt(call)
        if after is not None:
            replaced = after(ctx, call, result)
            if after_async:
                replaced = await replaced
            if replaced is not None:
                result = replaced
        return result

    return layer


def fused_call_hooks(pairs: Sequence[HookPair], nxt: Handler) -> Handler:
    """One layer for consecutive model- or tool-kind hooks (`before(ctx, call)` may replace).

    Each after hook receives the call exactly as its own middleware passed it inward.
    """
    if len(pairs) == 1:
        return single_call_hooks(pairs[0], nxt)
    befores = _hook_list([pair.before for pair in pairs])
    afters = _hook_list([pair.after for pair in reversed(pairs)])
    count = len(pairs)
    afters = tuple((count - 1 - index, hook, is_async) for index, hook, is_async in afters)

    async def layer(call: Any) -> Any:
        ctx = current_context_or_none()
        seen: list[Any] | None = None
        for index, hook, is_async in befores:
            replaced = hook(ctx, call)
            if is_async:
                replaced = await replaced
            if replaced is not None:
                if seen is None:
                    seen = [call] * count
                seen[index:] = [replaced] * (count - index)
                call = replaced
        result = await nxt(call)
        for index, hook, is_async in afters:
            replaced = hook(ctx, call if seen is None else seen[index], result)
            if is_async:
                replaced = await replaced
            if replaced is not None:
                result = replaced
        return result

    return layer


def fused_agent_hooks(pairs: Sequence[HookPair], nxt: Handler) -> Handler:
    """One layer for consecutive agent hooks: `before(ctx, agent_name)`, `after(ctx, name, r)`."""
    befores = tuple((hook, is_async) for _, hook, is_async in _hook_list([p.before for p in pairs]))
    afters = tuple(
        (hook, is_async) for _, hook, is_async in _hook_list([p.after for p in reversed(pairs)])
    )

    async def layer(call: Any) -> Any:
        ctx = current_context_or_none()
        name = call.agent_name
        for hook, is_async in befores:
            if is_async:
                await hook(ctx, name)
            else:
                hook(ctx, name)
        result = await nxt(call)
        for hook, is_async in afters:
            replaced = hook(ctx, name, result)
            if is_async:
                replaced = await replaced
            if replaced is not None:
                result = replaced
        return result

    return layer


def fused_pipeline_hooks(pairs: Sequence[HookPair], nxt: Handler) -> Handler:
    """One layer for consecutive pipeline hooks: `before(ctx)`, `after(ctx, result)`."""
    befores = tuple((hook, is_async) for _, hook, is_async in _hook_list([p.before for p in pairs]))
    afters = tuple(
        (hook, is_async) for _, hook, is_async in _hook_list([p.after for p in reversed(pairs)])
    )

    async def layer(call: Any) -> Any:
        ctx = current_context_or_none()
        for hook, is_async in befores:
            if is_async:
                await hook(ctx)
            else:
                hook(ctx)
        result = await nxt(call)
        for hook, is_async in afters:
            replaced = hook(ctx, result)
            if is_async:
                replaced = await replaced
            if replaced is not None:
                result = replaced
        return result

    return layer
