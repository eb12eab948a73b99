"""Middleware stacks and the chains they compile into, one per call kind.

`MiddlewareStack.use()` checks a middleware once, at registration: which hooks it has,
whether each is sync or async, and its stack contract (`onionskin.core.placement`).
`compiled()` resolves the declared positions and folds the stack into four handlers the
first time it is needed after a change; calls then walk closures, never the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from onionskin.core._fail_open import fail_open_hook, fail_open_wrap
from onionskin.core._layers import (
    Handler,
    Hook,
    HookPair,
    fused_agent_hooks,
    fused_call_hooks,
    fused_pipeline_hooks,
    is_async_callable,
    wrap_layer,
)
from onionskin.core.calls import CALL_KINDS, CallKind
from onionskin.core.errors import ConfigError
from onionskin.core.middleware import (
    AFTER_HOOKS,
    BEFORE_HOOKS,
    HOOK_NAMES,
    WRAP_METHODS,
    overridden_hook,
)
from onionskin.core.placement import (
    DEFAULT_CONTRACT,
    Placed,
    StackContract,
    contract_of,
    middleware_name,
    resolve_order,
)

_FUSERS: dict[CallKind, Callable[[list[HookPair], Handler], Handler]] = {
    "pipeline": fused_pipeline_hooks,
    "agent": fused_agent_hooks,
    "model": fused_call_hooks,
    "tool": fused_call_hooks,
}


@dataclass(frozen=True, slots=True)
class KindParts:
    """What one middleware contributes to one call kind."""

    wrap: Hook | None = None
    hooks: HookPair | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered middleware, inspected once."""

    middleware: object
    parts: dict[CallKind, KindParts]
    on_error: Hook | None
    contract: StackContract = DEFAULT_CONTRACT
    name: str = ""
    """What `before=` / `after=` declarations call it."""


@dataclass(frozen=True, slots=True)
class Terminals:
    """The innermost handler of each call kind: what the chain finally calls."""

    pipeline: Handler
    agent: Handler
    model: Handler
    tool: Handler


@dataclass(frozen=True, slots=True)
class OnErrorHook:
    """One `on_error` hook, detected sync or async at registration."""

    hook: Hook
    is_async: bool


@dataclass(frozen=True, slots=True)
class CompiledStack:
    """A stack folded into one handler per call kind, plus its on_error hooks (reversed)."""

    pipeline: Handler
    agent: Handler
    model: Handler
    tool: Handler
    on_error: tuple[OnErrorHook, ...]
    entries: tuple[Entry, ...] = ()
    """The middleware in effect, outermost first (declared positions resolved)."""
    mandatory_after: tuple[OnErrorHook, ...] = ()
    """The `after_pipeline` hooks of mandatory middleware, innermost first: the orchestrator
    runs them once a run has completed, however it completed (`StopProcessing` included)."""


def inspect_middleware(middleware: object) -> Entry:
    """Find which hooks `middleware` has and its contract; `ConfigError` when it has none.

    `middleware` may be `Placed` (see `onionskin.core.placement.place`).
    """
    if isinstance(middleware, Placed):
        contract = middleware.contract
        middleware = middleware.middleware
    else:
        contract = contract_of(middleware)
    name = middleware_name(middleware, contract)
    guard = _fail_open_guard(name) if contract.fail_open else None
    parts: dict[CallKind, KindParts] = {}
    named = any(overridden_hook(middleware, hook) for hook in HOOK_NAMES)
    if not named and callable(middleware):
        # Seed 001: a plain `mw(call, next)` function or object wraps tool calls.
        parts["tool"] = KindParts(
            wrap=middleware if guard is None else guard(middleware, "wrap_tool_call")
        )
        return Entry(middleware, parts, None, contract, name)
    for kind in CALL_KINDS:
        found: list[Hook | None] = []
        for hook_name in (WRAP_METHODS[kind], BEFORE_HOOKS[kind], AFTER_HOOKS[kind]):
            hook = overridden_hook(middleware, hook_name)
            found.append(hook if hook is None or guard is None else guard(hook, hook_name))
        wrap, before, after = found
        hooks = HookPair(before, after) if before or after else None
        if wrap or hooks:
            parts[kind] = KindParts(wrap=wrap, hooks=hooks)
    on_error = overridden_hook(middleware, "on_error")
    if not parts and on_error is None:
        raise ConfigError(
            f"{middleware!r} is not a middleware: give it at least one of "
            f"{', '.join(sorted(HOOK_NAMES))}, or pass an `async def mw(call, next)` function"
        )
    return Entry(middleware, parts, on_error, contract, name)


def _fail_open_guard(owner: str) -> Callable[[Hook, str], Hook]:
    def guard(hook: Hook, hook_name: str) -> Hook:
        if hook_name.startswith("wrap_"):
            return fail_open_wrap(hook, owner, hook_name)
        return fail_open_hook(hook, owner, hook_name)

    return guard


def _compose(kind: CallKind, entries: Iterable[Entry], terminal: Handler) -> Handler:
    handler = terminal
    pending: list[HookPair] = []  # hook-only layers waiting to be fused, innermost last
    fuse = _FUSERS[kind]
    for entry in reversed(list(entries)):
        part = entry.parts.get(kind)
        if part is None:
            continue
        if part.wrap is not None:
            if pending:
                handler = fuse(pending[::-1], handler)
                pending = []
            handler = wrap_layer(part.wrap, handler)
        if part.hooks is not None:
            # Hooks sit outside their own middleware's wrap, so they join the pending run.
            pending.append(part.hooks)
    if pending:
        handler = fuse(pending[::-1], handler)
    return handler


def effective_order(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """`entries` (registration order) in the order their contracts declare, outermost first."""
    entries = tuple(entries)
    if all(entry.contract is DEFAULT_CONTRACT for entry in entries):
        return entries  # nothing declared: the registration order is the order
    order = resolve_order([(entry.name, entry.contract) for entry in entries])
    return tuple(entries[index] for index in order)


def compile_stack(entries: Iterable[Entry], terminals: Terminals) -> CompiledStack:
    """Fold `entries` (registration order) around `terminals`, declared positions resolved."""
    entries = effective_order(entries)
    mandatory_after: list[OnErrorHook] = []
    chained: list[Entry] = []
    for entry in entries:
        part = entry.parts.get("pipeline")
        after = None if part is None or part.hooks is None else part.hooks.after
        if entry.contract.mandatory and after is not None:
            # Taken out of the chain: an inner StopProcessing or an outer short-circuit
            # would skip it there. The orchestrator runs it at the end of every run.
            mandatory_after.append(OnErrorHook(after, is_async_callable(after)))
            before = part.hooks.before if part is not None and part.hooks else None
            pipeline = KindParts(
                wrap=None if part is None else part.wrap,
                hooks=None if before is None else HookPair(before, None),
            )
            entry = replace(entry, parts={**entry.parts, "pipeline": pipeline})
        chained.append(entry)
    on_error = tuple(
        OnErrorHook(entry.on_error, is_async_callable(entry.on_error))
        for entry in reversed(entries)
        if entry.on_error is not None
    )
    return CompiledStack(
        pipeline=_compose("pipeline", chained, terminals.pipeline),
        agent=_compose("agent", entries, terminals.agent),
        model=_compose("model", entries, terminals.model),
        tool=_compose("tool", entries, terminals.tool),
        on_error=on_error,
        entries=entries,
        mandatory_after=tuple(reversed(mandatory_after)),
    )


class MiddlewareStack:
    """An ordered list of middleware (outermost first) and its compiled chains."""

    def __init__(self, terminals: Terminals, middleware: Iterable[object] = ()) -> None:
        self._terminals = terminals
        self._entries: list[Entry] = []
        self._compiled: CompiledStack | None = None
        for item in middleware:
            self.use(item)

    def use(self, middleware: object) -> None:
        """Append `middleware` as the innermost layer so far; raise `ConfigError` if it is none."""
        self._entries.append(inspect_middleware(middleware))
        self._compiled = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The middleware in effect, outermost first (declared positions resolved).

        Raises:
            ConfigError: the declared positions name a missing middleware or contradict.
        """
        return self.compiled().entries

    def compiled(self) -> CompiledStack:
        """The chains for the current stack, folded on first use after a change."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = compile_stack(self._entries, self._terminals)
        return compiled


async def run_on_error_hooks(
    hooks: Iterable[OnErrorHook],
    context: Any,
    error: BaseException,
    report: Callable[[OnErrorHook, BaseException], None],
) -> None:
    """Run each on_error hook; a hook that raises is reported and the rest still run.

    Any: the context is a `RunContext`, typed loosely to keep this module free of it.
    """
    for item in hooks:
        try:
            result = item.hook(context, error)
            if item.is_async:
                await result
        except Exception as hook_error:  # a failing error hook must not hide the run's error
            report(item, hook_error)
