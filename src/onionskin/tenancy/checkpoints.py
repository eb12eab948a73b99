"""`TenantScopedCheckpointStore`: a checkpoint store bound to one tenant (seed 000).

It wraps the base store and names its tenant in every call, so code holding it cannot read,
list, delete or write any other tenant's checkpoints, whatever run or checkpoint ids it
guesses or crafts. The base stores already refuse to read across partitions; the scoped
store removes the `tenant_id` argument, so no caller can pass the wrong one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, runtime_checkable

from onionskin.core.errors import TenantError
from onionskin.core.tenant import TenantContext
from onionskin.stores.checkpoints import Checkpoint, CheckpointStore, RunSummary


@runtime_checkable
class ScopedCheckpointStore(Protocol):
    """A checkpoint store bound to one tenant: the `CheckpointStore` calls without `tenant_id`."""

    @property
    def tenant_id(self) -> str | None:
        """The tenant every call is bound to (None: the runs without a tenant)."""
        ...

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a new checkpoint of this tenant."""
        ...

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """This tenant's checkpoint with this id, or None."""
        ...

    async def get_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """This tenant's checkpoints of the run, in step order."""
        ...

    async def latest_checkpoint(self, run_id: str) -> Checkpoint | None:
        """This tenant's latest checkpoint of the run, or None."""
        ...

    async def delete_checkpoints(self, run_id: str) -> int:
        """Delete this tenant's checkpoints of the run; how many there were."""
        ...

    async def list_runs(self, *, limit: int = 100) -> list[RunSummary]:
        """This tenant's runs, the most recently started first."""
        ...


class TenantScopedCheckpointStore:
    """Scopes every read and write of a checkpoint store to one tenant (seed 000).

    | Operation | Behavior |
    |---|---|
    | `save_checkpoint()` | Tags the checkpoint with the tenant ID |
    | `get_checkpoints()` | Filters results to only the current tenant |
    | `delete_checkpoints()` | Only deletes checkpoints owned by the current tenant |
    | `list_runs()` | Only returns runs belonging to the current tenant |

    Args:
        base_store: the store to wrap; the scoped store does not close it.
        tenant_id: the tenant, checked like `TenantContext.tenant_id` (a `TenantError`
            otherwise); None binds the store to the runs without a tenant, never to all.

    Example:
        ```python
        scoped_store = TenantScopedCheckpointStore(
            base_store=checkpoint_store, tenant_id=context.tenant_id
        )
        checkpoints = await scoped_store.get_checkpoints(run_id="run_abc123")
        ```
    """

    __slots__ = ("_base", "_tenant_id")

    def __init__(self, *, base_store: CheckpointStore, tenant_id: str | None) -> None:
        if tenant_id is not None:
            TenantContext(tenant_id=tenant_id)  # the one place the tenant-id rule lives
        self._base = base_store
        self._tenant_id = tenant_id

    @property
    def tenant_id(self) -> str | None:
        """The tenant every call is bound to (None: the runs without a tenant)."""
        return self._tenant_id

    @property
    def base_store(self) -> CheckpointStore:
        """The wrapped store."""
        return self._base

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Tag `checkpoint` with this tenant and store it.

        A checkpoint that already names another tenant (or, for the untenanted store, any
        tenant) is a `TenantError` and is not stored.
        """
        tenant = self._tenant_id
        given: object = checkpoint  # anything else is refused by the base store, untouched
        if isinstance(given, Checkpoint) and checkpoint.tenant_id != tenant:
            if checkpoint.tenant_id is not None:
                raise TenantError(
                    f"checkpoint {checkpoint.checkpoint_id!r} names tenant "
                    f"{checkpoint.tenant_id!r} but this store is scoped to {tenant!r}; save "
                    "it through a store scoped to its own tenant"
                )
            checkpoint = replace(checkpoint, tenant_id=tenant)
        await self._base.save_checkpoint(checkpoint)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """This tenant's checkpoint with this id, or None (also when another tenant has it)."""
        return await self._base.get_checkpoint(checkpoint_id, tenant_id=self._tenant_id)

    async def get_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """This tenant's checkpoints of the run, in step order."""
        return await self._base.get_checkpoints(run_id, tenant_id=self._tenant_id)

    async def latest_checkpoint(self, run_id: str) -> Checkpoint | None:
        """This tenant's latest checkpoint of the run, or None."""
        return await self._base.latest_checkpoint(run_id, tenant_id=self._tenant_id)

    async def delete_checkpoints(self, run_id: str) -> int:
        """Delete this tenant's checkpoints of the run; how many there were."""
        return await self._base.delete_checkpoints(run_id, tenant_id=self._tenant_id)

    async def list_runs(self, *, limit: int = 100) -> list[RunSummary]:
        """This tenant's runs, the most recently started first, at most `limit` (1..1000)."""
        return await self._base.list_runs(tenant_id=self._tenant_id, limit=limit)

    def __repr__(self) -> str:
        return f"TenantScopedCheckpointStore(tenant_id={self._tenant_id!r})"
