"""Resume, replay and fork: the orchestrator's methods that start a run from a checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from onionskin.core.context import request_metadata_scope
from onionskin.core.events import EventSink
from onionskin.core.ids import new_id
from onionskin.core.progress import ResumePoint
from onionskin.core.tenant import TenantContext
from onionskin.runtime._resume import checkpoint_source

if TYPE_CHECKING:
    from onionskin.runtime._result import RunResult


class TimeTravel:
    """Mixed into `Orchestrator`: runs that continue from a saved checkpoint."""

    if TYPE_CHECKING:

        @property
        def middleware(self) -> tuple[object, ...]: ...

        async def _execute(
            self,
            input_data: object,
            context: TenantContext | None,
            state: Mapping[str, Any] | None,
            run_id: str | None,
            emit: EventSink | None,
            resume: ResumePoint | None = None,
        ) -> RunResult: ...

    async def resume(
        self,
        run_id: str,
        *,
        context: TenantContext | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_event: EventSink | None = None,
    ) -> RunResult:
        """Continue an interrupted or failed run from its last checkpoint, under its run id.

        Nothing that finished before that checkpoint runs again. Needs a checkpointing
        middleware (`CheckpointMiddleware`) in the stack; `context` must be the run's tenant.
        """
        tenant_id = None if context is None else context.tenant_id
        point = await checkpoint_source(self.middleware).resume_point(
            tenant_id=tenant_id, run_id=run_id
        )
        return await self._run_from(point, point.run_id, context, metadata, None, on_event)

    async def fork(
        self,
        checkpoint_id: str,
        *,
        state: Mapping[str, Any] | None = None,
        context: TenantContext | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        on_event: EventSink | None = None,
    ) -> RunResult:
        """Start a new run from any checkpoint, with `state` merged over the saved state.

        The new run's first checkpoint names `checkpoint_id` as its parent; the original
        run is left as it was.
        """
        tenant_id = None if context is None else context.tenant_id
        point = await checkpoint_source(self.middleware).resume_point(
            tenant_id=tenant_id, checkpoint_id=checkpoint_id
        )
        return await self._run_from(point, run_id or new_id(), context, metadata, state, on_event)

    async def replay(
        self,
        checkpoint_id: str,
        *,
        context: TenantContext | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_event: EventSink | None = None,
    ) -> RunResult:
        """Run again from any checkpoint, as a new run with the state saved there."""
        return await self.fork(checkpoint_id, context=context, metadata=metadata, on_event=on_event)

    async def _run_from(
        self,
        point: ResumePoint,
        run_id: str,
        context: TenantContext | None,
        metadata: Mapping[str, Any] | None,
        state: Mapping[str, Any] | None,
        emit: EventSink | None,
    ) -> RunResult:
        if metadata is None:
            return await self._execute(None, context, state, run_id, emit, point)
        with request_metadata_scope(metadata):
            return await self._execute(None, context, state, run_id, emit, point)
