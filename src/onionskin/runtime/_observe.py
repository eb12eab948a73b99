"""Call events around a chain, built only when the run has a listener."""

from __future__ import annotations

import time
from typing import Any

from onionskin.core._layers import Handler
from onionskin.core.calls import CallKind, ModelResponse, ToolResult
from onionskin.core.context import RunContext
from onionskin.core.events import CallFailed, CallFinished, CallStarted
from onionskin.core.ids import new_id


async def observed_call(
    ctx: RunContext, kind: CallKind, name: str, handler: Handler, call: Any
) -> Any:
    """Emit `CallStarted`, run `handler(call)`, then emit `CallFinished` or `CallFailed`.

    Call sites test `ctx.emit` first and await the handler directly when nobody listens,
    which saves a coroutine frame per call.

    Any: the request and result types follow `kind`.
    """
    emit = ctx.emit
    if emit is None:
        return await handler(call)
    call_id = new_id()
    run_id, tenant_id, agent = ctx.run_id, ctx.tenant_id, ctx.current_agent
    emit(
        CallStarted(
            run_id=run_id, tenant_id=tenant_id, kind=kind, name=name, call_id=call_id, agent=agent
        )
    )
    started = time.perf_counter()
    try:
        result = await handler(call)
    except BaseException as error:  # reported, then re-raised unchanged
        elapsed = (time.perf_counter() - started) * 1000.0
        emit(
            CallFailed(
                run_id=run_id,
                tenant_id=tenant_id,
                kind=kind,
                name=name,
                call_id=call_id,
                duration_ms=elapsed,
                agent=agent,
                error_type=type(error).__name__,
                error=str(error),
            )
        )
        raise
    elapsed = (time.perf_counter() - started) * 1000.0
    finished = CallFinished(
        run_id=run_id,
        tenant_id=tenant_id,
        kind=kind,
        name=name,
        call_id=call_id,
        duration_ms=elapsed,
        agent=agent,
    )
    if isinstance(result, ModelResponse):
        finished.input_tokens = result.usage.input_tokens
        finished.output_tokens = result.usage.output_tokens
        finished.cost_usd = call.model.cost(result.usage)
    elif isinstance(result, ToolResult):
        finished.error = result.error
    emit(finished)
    return result
