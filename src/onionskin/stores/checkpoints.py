"""Checkpoints of runs, for time travel and resume: the values, the protocol, the memory store.

A checkpoint is what a run looked like after one step (its state, messages and whatever
else resume needs). Checkpoints are immutable: an id is saved once, never overwritten.
Every read and delete names the tenant's partition, and there is no call that reads across
partitions: `tenant_id=None` is the partition of runs *without* a tenant, not "all tenants".
The SQL backends live in `onionskin.stores.sql_checkpoints`.

Over 200 lines: the values, the protocol and the memory store (the reference the SQL
backends are tested against) are read together.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from onionskin.stores import _checkpoint_codec as codec

CheckpointKind = Literal["input", "model", "tool", "agent", "end"]
"""What had just finished when the checkpoint was taken."""
RunStatus = Literal["running", "completed", "failed"]
"""A run's status."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A run as it was after one step: enough to show it and to resume from it."""

    checkpoint_id: str
    """`new_id()`: time-ordered, so id order is save order."""
    run_id: str
    tenant_id: str | None
    """The tenant the run belongs to; None for a run without a tenant."""
    parent_id: str | None
    """The previous checkpoint of the same run (or of the run this one was forked from)."""
    pipeline_id: str
    step: int
    """0, 1, 2 ... within the run."""
    kind: CheckpointKind
    agent: str | None
    """The agent running at that point, if any."""
    status: RunStatus
    """The run's status as of this checkpoint."""
    # Any: the three payloads are JSON values of the runtime's choosing.
    state: Mapping[str, Any]
    """The run's `context.state`, as JSON values."""
    messages: Sequence[Mapping[str, Any]]
    """The conversation so far, as JSON-shaped messages (the runtime encodes them)."""
    data: Mapping[str, Any]
    """Anything else resume needs, as JSON values (the runtime decides)."""
    created_at: datetime
    """When it was taken: aware; stores give it back in UTC."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One run of a tenant, as `list_runs` shows it."""

    run_id: str
    tenant_id: str | None
    pipeline_id: str
    """The pipeline of the run's latest checkpoint."""
    checkpoints: int
    """How many checkpoints the run has."""
    last_step: int
    status: RunStatus
    """The status of the run's latest checkpoint."""
    started_at: datetime
    """The earliest checkpoint's `created_at`."""
    updated_at: datetime
    """The latest `created_at` of its checkpoints."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Where checkpoints are kept, partitioned by tenant (`tenant_id=None`: no tenant)."""

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a new checkpoint; an id that already exists is a `StoreError`."""
        ...

    async def get_checkpoint(
        self, checkpoint_id: str, *, tenant_id: str | None
    ) -> Checkpoint | None:
        """The checkpoint with this id in this tenant's partition, or None."""
        ...

    async def get_checkpoints(self, run_id: str, *, tenant_id: str | None) -> list[Checkpoint]:
        """The run's checkpoints in this tenant's partition, in step order."""
        ...

    async def latest_checkpoint(self, run_id: str, *, tenant_id: str | None) -> Checkpoint | None:
        """The run's checkpoint with the highest step, or None."""
        ...

    async def delete_checkpoints(self, run_id: str, *, tenant_id: str | None) -> int:
        """Delete the run's checkpoints in this tenant's partition; how many there were."""
        ...

    async def list_runs(self, *, tenant_id: str | None, limit: int = 100) -> list[RunSummary]:
        """This tenant's runs, the most recently started first, at most `limit` (1..1000)."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections."""
        ...


class MemoryCheckpointStore:
    """Checkpoints of one process, in memory: the default, and the reference for SQL.

    Payloads are kept as JSON text, so a caller can change neither a stored checkpoint
    (through the objects it saved) nor another reader's copy (through one it read).
    """

    def __init__(self) -> None:
        # tenant key -> run id -> the run's checkpoints, sorted by (step, checkpoint_id)
        self._runs: dict[str, dict[str, list[codec.EncodedCheckpoint]]] = {}
        self._ids: dict[str, codec.EncodedCheckpoint] = {}
        self._lock = threading.Lock()  # a store may be shared by loops in several threads

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a new checkpoint; an id that already exists is a `StoreError`."""
        encoded = codec.encode_checkpoint(checkpoint)
        # Keep no reference to the caller's payload objects: only their JSON.
        shell = replace(checkpoint, state={}, messages=(), data={}, created_at=encoded.created_at)
        encoded = replace(encoded, checkpoint=shell)
        with self._lock:
            if checkpoint.checkpoint_id in self._ids:
                raise codec.duplicate_error(checkpoint.checkpoint_id)
            run = self._runs.setdefault(encoded.tenant_key, {}).setdefault(checkpoint.run_id, [])
            bisect.insort(run, encoded, key=_order)
            self._ids[checkpoint.checkpoint_id] = encoded

    async def get_checkpoint(
        self, checkpoint_id: str, *, tenant_id: str | None
    ) -> Checkpoint | None:
        """The checkpoint with this id in this tenant's partition, or None."""
        codec.check_id("checkpoint_id", checkpoint_id)
        tenant = codec.tenant_key(tenant_id)
        with self._lock:
            found = self._ids.get(checkpoint_id)
        return None if found is None or found.tenant_key != tenant else _decode(found)

    async def get_checkpoints(self, run_id: str, *, tenant_id: str | None) -> list[Checkpoint]:
        """The run's checkpoints in this tenant's partition, in step order."""
        return [_decode(found) for found in self._run(run_id, tenant_id)]

    async def latest_checkpoint(self, run_id: str, *, tenant_id: str | None) -> Checkpoint | None:
        """The run's checkpoint with the highest step, or None."""
        run = self._run(run_id, tenant_id)
        return _decode(run[-1]) if run else None

    async def delete_checkpoints(self, run_id: str, *, tenant_id: str | None) -> int:
        """Delete the run's checkpoints in this tenant's partition; how many there were."""
        codec.check_id("run_id", run_id)
        tenant = codec.tenant_key(tenant_id)
        with self._lock:
            run = self._runs.get(tenant, {}).pop(run_id, [])
            for found in run:
                del self._ids[found.checkpoint.checkpoint_id]
        return len(run)

    async def list_runs(self, *, tenant_id: str | None, limit: int = 100) -> list[RunSummary]:
        """This tenant's runs, the most recently started first, at most `limit` (1..1000)."""
        codec.check_limit(limit)
        tenant = codec.tenant_key(tenant_id)
        with self._lock:
            runs = [list(run) for run in self._runs.get(tenant, {}).values()]
        summaries = [_summary(run) for run in runs]
        summaries.sort(key=lambda summary: (summary.started_at, summary.run_id), reverse=True)
        return summaries[:limit]

    async def aclose(self) -> None:
        """Nothing to release."""

    def _run(self, run_id: str, tenant_id: str | None) -> list[codec.EncodedCheckpoint]:
        codec.check_id("run_id", run_id)
        tenant = codec.tenant_key(tenant_id)
        with self._lock:
            return list(self._runs.get(tenant, {}).get(run_id, ()))


def _order(encoded: codec.EncodedCheckpoint) -> tuple[int, str]:
    return encoded.checkpoint.step, encoded.checkpoint.checkpoint_id


def _decode(encoded: codec.EncodedCheckpoint) -> Checkpoint:
    return replace(
        encoded.checkpoint,
        state=codec.decode_json(encoded.state),
        messages=codec.decode_json(encoded.messages),
        data=codec.decode_json(encoded.data),
    )


def _summary(run: Sequence[codec.EncodedCheckpoint]) -> RunSummary:
    latest = run[-1].checkpoint
    times = [encoded.created_at for encoded in run]
    return RunSummary(
        run_id=latest.run_id,
        tenant_id=latest.tenant_id,
        pipeline_id=latest.pipeline_id,
        checkpoints=len(run),
        last_step=latest.step,
        status=latest.status,
        started_at=min(times),
        updated_at=max(times),
    )
