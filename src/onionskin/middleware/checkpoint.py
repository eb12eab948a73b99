"""`CheckpointMiddleware`: a checkpoint after every step, and runs resumed from them.

A run saves an `input` checkpoint when it starts, one after every model call, tool call
and agent turn, and an `end` checkpoint when it completes or fails. Each carries the run's
state, the transcript of the turn under way and what resuming needs (finished agents'
outputs, the tool results of the latest reply, tokens and cost so far). Register it first
(outermost), so that what it records is exactly what the runtime receives.

Every read and write goes through a `TenantScopedCheckpointStore` for the run's tenant:
the caller never passes the tenant again, and a run can't touch another tenant's history.
`orchestrator.resume(run_id)`, `.replay(checkpoint_id)` and `.fork(checkpoint_id,
state=...)` find this middleware in the stack and ask it for a `ResumePoint`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from onionskin.core.calls import (
    AgentCall,
    AgentResult,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    ToolCall,
    ToolResult,
)
from onionskin.core.context import RunContext, current_context
from onionskin.core.errors import StopProcessing, StoreError
from onionskin.core.ids import new_id
from onionskin.core.progress import ResumePoint
from onionskin.middleware._checkpoint_snapshot import jsonable, resume_point_of, snapshot_data
from onionskin.middleware._message_json import message_to_json
from onionskin.runtime._turn import tool_return
from onionskin.stores.checkpoints import Checkpoint, CheckpointKind, CheckpointStore, RunStatus
from onionskin.tenancy.checkpoints import TenantScopedCheckpointStore

_KEY = "checkpoint"
LATEST_KEY = "checkpoint_id"
"""`guard_state` key of the run's latest checkpoint id (an approval request records it)."""


@dataclass(slots=True)
class _Cursor:
    """A run's position in its checkpoint history (one per run, in `guard_state`)."""

    store: TenantScopedCheckpointStore
    step: int
    parent_id: str | None
    forked_from: str | None = None
    """In a forked or replayed run: the checkpoint of the original run it started from."""


class CheckpointMiddleware:
    """Saves a checkpoint after every agent step, model call and tool call of every run.

    Args:
        store: where checkpoints go (memory, SQLite or PostgreSQL); scoped per run to the
            run's tenant.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    def _scoped(self, tenant_id: str | None) -> TenantScopedCheckpointStore:
        return TenantScopedCheckpointStore(base_store=self.store, tenant_id=tenant_id)

    async def _save(
        self,
        ctx: RunContext,
        kind: CheckpointKind,
        *,
        status: RunStatus = "running",
        extra: dict[str, Any] | None = None,
    ) -> None:
        cursor: _Cursor = ctx.guard_state[_KEY]
        progress = ctx.progress
        turn = progress.turn_messages or ()
        checkpoint = Checkpoint(
            checkpoint_id=new_id(),
            run_id=ctx.run_id,
            tenant_id=ctx.tenant_id,
            parent_id=cursor.parent_id,
            pipeline_id=ctx.pipeline_id,
            step=cursor.step,
            kind=kind,
            agent=progress.turn_agent or ctx.current_agent,
            status=status,
            state=jsonable(ctx.state),
            messages=[message_to_json(message) for message in turn],
            data=snapshot_data(ctx, extra, forked_from=cursor.forked_from),
            created_at=datetime.now(UTC),
        )
        await cursor.store.save_checkpoint(checkpoint)
        cursor.step += 1
        cursor.parent_id = ctx.guard_state[LATEST_KEY] = checkpoint.checkpoint_id

    async def wrap_pipeline(
        self, call: PipelineCall, call_next: Callable[[PipelineCall], Awaitable[PipelineResult]]
    ) -> PipelineResult:
        """Save `input` at the start (unless resuming) and `end` when the run ends."""
        ctx = current_context()
        resume = ctx.resume
        store = self._scoped(ctx.tenant_id)
        if resume is None:
            ctx.guard_state[_KEY] = _Cursor(store, 0, None)
            ctx.progress.input = call.input
            await self._save(ctx, "input")
        else:
            forked_from = resume.checkpoint_id if resume.run_id != ctx.run_id else None
            ctx.guard_state[_KEY] = _Cursor(
                store, resume.step + 1, resume.checkpoint_id, forked_from
            )
        try:
            result = await call_next(call)
        except StopProcessing:
            await self._save(ctx, "end", status="completed", extra={"stopped": True})
            raise
        except Exception as error:
            failure = {"type": type(error).__name__, "message": str(error)}
            await self._save(ctx, "end", status="failed", extra={"error": failure})
            raise
        await self._save(ctx, "end", status="completed", extra={"output": jsonable(result.output)})
        return result

    async def wrap_agent(
        self, call: AgentCall, call_next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        """Save `agent` once a turn finished, with its output among the finished ones."""
        result = await call_next(call)
        ctx = current_context()
        outputs = {**ctx.progress.outputs, call.agent_name: result.output}
        await self._save(ctx, "agent", extra={"outputs": outputs})
        return result

    async def wrap_model_call(
        self, request: ModelRequest, call_next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Save `model` with the turn's transcript including the reply."""
        response = await call_next(request)
        ctx = current_context()
        progress = ctx.progress
        turn = progress.turn_messages
        if turn is not None:
            progress.turn_messages = [*turn, response.message]
            progress.tool_returns = []
            try:
                await self._save(ctx, "model")
            finally:
                progress.turn_messages, progress.tool_returns = turn, None
        return response

    async def wrap_tool_call(
        self, call: ToolCall, call_next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Save `tool` with the results of the reply's tool calls so far."""
        result = await call_next(call)
        ctx = current_context()
        progress = ctx.progress
        done = progress.tool_returns
        if done is not None:
            progress.tool_returns = [*done, tool_return(call, result)]
            try:
                await self._save(ctx, "tool")
            finally:
                progress.tool_returns = done
        return result

    async def resume_point(
        self,
        *,
        tenant_id: str | None,
        run_id: str | None = None,
        checkpoint_id: str | None = None,
    ) -> ResumePoint:
        """`run_id`'s latest checkpoint (it must not have completed), or `checkpoint_id`."""
        store = self._scoped(tenant_id)
        if checkpoint_id is not None:
            checkpoint = await store.get_checkpoint(checkpoint_id)
            if checkpoint is None:
                raise StoreError(f"no checkpoint {checkpoint_id!r} for this tenant")
            return resume_point_of(checkpoint)
        if run_id is None:
            raise StoreError("resume needs a run_id or a checkpoint_id")
        latest = await store.latest_checkpoint(run_id)
        if latest is None:
            raise StoreError(f"no checkpoints of run {run_id!r} for this tenant")
        if latest.status == "completed":
            raise StoreError(
                f"run {run_id!r} completed: nothing to resume; replay or fork one of its "
                "checkpoints instead"
            )
        if latest.kind == "end":
            # A failed run continues from the step before its failure record.
            parent = latest.parent_id and await store.get_checkpoint(latest.parent_id)
            if not parent:
                raise StoreError(f"run {run_id!r} has no step to resume from")
            return resume_point_of(parent, step=latest.step, checkpoint_id=latest.checkpoint_id)
        return resume_point_of(latest)
