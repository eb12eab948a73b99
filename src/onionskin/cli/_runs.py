"""`onionskin runs` and `onionskin checkpoints RUN`: what the checkpoint store holds.

Tenant safety: the checkpoint store has no call that reads across tenants, by design (on
PostgreSQL, forced row-level security lets no role see another tenant's rows). So each
command reads one partition, through a `TenantScopedCheckpointStore` bound to it: the
tenant `--tenant` names or, without it, the runs that have no tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from onionskin.cli._errors import CommandError, clear_errors
from onionskin.cli._options import DbOption, JsonOption, check_range, database_url, tenant_id
from onionskin.cli._output import (
    JsonValue,
    add_row,
    console,
    emit_json,
    iso,
    say,
    shown_time,
    status_text,
    table,
    tenant_label,
)
from onionskin.cli._summaries import summary
from onionskin.stores._checkpoint_codec import MAX_LIST_LIMIT
from onionskin.stores.checkpoints import Checkpoint, RunSummary
from onionskin.stores.sql_checkpoints import open_checkpoint_store
from onionskin.tenancy.checkpoints import TenantScopedCheckpointStore

T = TypeVar("T")

TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help=(
            "The tenant whose runs to read. Default: the runs without a tenant (the store "
            "never reads across tenants: name the tenant)."
        ),
        show_default=False,
    ),
]
LimitOption = Annotated[
    int, typer.Option("--limit", metavar="N", help=f"At most N runs (1 to {MAX_LIST_LIMIT}).")
]


async def _read(
    url: str, tenant: str | None, read: Callable[[TenantScopedCheckpointStore], Awaitable[T]]
) -> T:
    """Open the store at `url`, run `read` on its partition for `tenant`, close it."""
    store = await open_checkpoint_store(url)
    try:
        return await read(TenantScopedCheckpointStore(base_store=store, tenant_id=tenant))
    finally:
        await store.aclose()


def _whose(tenant: str | None) -> str:
    return f"for tenant {tenant!r}" if tenant is not None else "without a tenant"


def runs(
    db: DbOption = None,
    tenant: TenantOption = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """List the runs in the checkpoint store, newest first.

    With --tenant, that tenant's runs; without it, the runs that have no tenant.

    The store never lists across tenants: ask for each tenant by name.
    """
    with clear_errors():
        check_range("--limit", limit, 1, MAX_LIST_LIMIT)
        scope = tenant_id(tenant)
        url = database_url(db)
        found = asyncio.run(_read(url, scope, lambda store: store.list_runs(limit=limit)))
    if as_json:
        emit_json([_run_json(run) for run in found])
        return
    out = console()
    if not found:
        say(out, f"no runs {_whose(scope)}")
        if scope is None:
            say(Console(stderr=True), "a tenant's runs are listed with --tenant TENANT")
        return
    shown = table(
        f"Runs {_whose(scope)}, newest first",
        *("run", "pipeline", "tenant", "status", "last step", "checkpoints"),
        *("started (UTC)", "updated (UTC)"),
        right=("last step", "checkpoints"),
    )
    for run in found:
        add_row(
            shown,
            run.run_id,
            run.pipeline_id,
            tenant_label(run.tenant_id),
            status_text(run.status),
            str(run.last_step),
            str(run.checkpoints),
            shown_time(run.started_at),
            shown_time(run.updated_at),
        )
    out.print(shown)


def checkpoints(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run's id (see `runs`).")],
    db: DbOption = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's checkpoints in step order: kind, agent, time and what each holds."""
    with clear_errors():
        scope = tenant_id(tenant)
        url = database_url(db)
        found = asyncio.run(_read(url, scope, lambda store: store.get_checkpoints(run_id)))
        if not found:
            hint = "" if scope is not None else " (a tenant's runs need --tenant TENANT)"
            raise CommandError(f"no run {run_id!r} {_whose(scope)} in this database{hint}")
    if as_json:
        emit_json([_checkpoint_json(checkpoint) for checkpoint in found])
        return
    steps = {checkpoint.checkpoint_id: checkpoint.step for checkpoint in found}
    shown = table(
        f"Run {run_id} ({found[-1].pipeline_id}, {_whose(scope)})",
        *("step", "checkpoint", "parent", "kind", "agent", "status", "time (UTC)", "summary"),
        right=("step",),
    )
    for checkpoint in found:
        parent = checkpoint.parent_id
        add_row(
            shown,
            str(checkpoint.step),
            checkpoint.checkpoint_id,
            "-" if parent is None else f"step {steps[parent]}" if parent in steps else parent,
            checkpoint.kind,
            checkpoint.agent or "-",
            status_text(checkpoint.status),
            shown_time(checkpoint.created_at, millis=True),
            summary(checkpoint),
        )
    console().print(shown)


def _run_json(run: RunSummary) -> JsonValue:
    return {
        "run_id": run.run_id,
        "tenant_id": run.tenant_id,
        "pipeline_id": run.pipeline_id,
        "status": run.status,
        "last_step": run.last_step,
        "checkpoints": run.checkpoints,
        "started_at": iso(run.started_at),
        "updated_at": iso(run.updated_at),
    }


def _checkpoint_json(checkpoint: Checkpoint) -> JsonValue:
    return {
        "checkpoint_id": checkpoint.checkpoint_id,
        "run_id": checkpoint.run_id,
        "tenant_id": checkpoint.tenant_id,
        "parent_id": checkpoint.parent_id,
        "pipeline_id": checkpoint.pipeline_id,
        "step": checkpoint.step,
        "kind": checkpoint.kind,
        "agent": checkpoint.agent,
        "status": checkpoint.status,
        "created_at": iso(checkpoint.created_at),
        "summary": summary(checkpoint),
        "state": dict(checkpoint.state),
        "messages": list(checkpoint.messages),
        "data": dict(checkpoint.data),
    }
