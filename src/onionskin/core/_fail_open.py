"""Fail-open wrappers: a layer whose own code breaks is skipped, not allowed to fail the call.

Applied at registration to the hooks of a middleware whose contract says `fail_open=True`;
a fail-closed middleware (the default) is registered as it is and costs nothing extra.
What a fail-open layer may not swallow: deliberate refusals (a guard refusing, a missing
tenant, failed authentication), `StopProcessing`, cancellation, and errors that came from
the layers inside it: those are not the layer breaking.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from onionskin.core._layers import Handler, Hook, is_async_callable
from onionskin.core.errors import AuthenticationError, GuardError, TenantError

logger = logging.getLogger("onionskin.middleware")

REFUSALS: tuple[type[Exception], ...] = (GuardError, TenantError, AuthenticationError)
"""Errors a fail-open layer raises on purpose: they are never skipped."""

_PENDING = object()


def _skipped(owner: str, hook: str, error: Exception) -> None:
    logger.warning(
        "%s (fail-open) raised in %s; the call goes on without it: %r", owner, hook, error
    )


def fail_open_hook(hook: Hook, owner: str, hook_name: str) -> Hook:
    """`hook` that logs its own error and answers None (keep the call or result) instead."""
    if is_async_callable(hook):

        async def guarded_async(*args: Any) -> Any:
            try:
                return await hook(*args)
            except REFUSALS:
                raise
            except Exception as error:
                _skipped(owner, hook_name, error)
                return None

        return guarded_async

    def guarded(*args: Any) -> Any:
        try:
            return hook(*args)
        except REFUSALS:
            raise
        except Exception as error:
            _skipped(owner, hook_name, error)
            return None

    return guarded


def fail_open_wrap(wrap: Hook, owner: str, hook_name: str) -> Hook:
    """An onion method that, when its own code raises, answers as if it were absent.

    Before it called `next`: the call goes straight to `next`. After `next` answered: that
    answer is returned. If `next` itself raised, that error is the inner layers' and
    passes on unchanged.
    """

    async def guarded(call: Any, nxt: Handler) -> Any:
        # Per call: which of the three cases an error falls in.
        outcome: list[Any] = [_PENDING, False]  # [inner result, inner was called]

        async def tracked(inner_call: Any) -> Any:
            outcome[1] = True
            result = await nxt(inner_call)
            outcome[0] = result
            return result

        try:
            answered = wrap(call, tracked)
            if inspect.isawaitable(answered):
                answered = await answered
            return answered
        except REFUSALS:
            raise
        except Exception as error:
            if outcome[1] and outcome[0] is _PENDING:
                raise  # the inner layers failed: not this layer's error to hide
            _skipped(owner, hook_name, error)
            return outcome[0] if outcome[1] else await nxt(call)

    return guarded
