"""`onionskin replay RUN --from CHECKPOINT`: run again from a saved step, with the project's stack.

Without `--state` it replays (`orchestrator.replay`): a new run from the checkpoint, with
the state saved there; with `--state KEY=VALUE` it forks (`orchestrator.fork`) with those
keys set over the saved state. Without `--from` it continues a failed or interrupted run
from its last step under its own id (`orchestrator.resume`). Either way nothing that
finished before the checkpoint runs again, and the original run is left as it was.

The checkpoint is read through the tenant's partition (`--tenant`, or the runs without
one), so another tenant's run or checkpoint is unknown here, as one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from onionskin.cli._errors import CommandError, clear_errors
from onionskin.cli._logs import warnings_as_lines
from onionskin.cli._options import JsonOption, ProjectDbOption, database_url
from onionskin.cli._project_stack import (
    build_orchestrator,
    check_name,
    open_project,
    project_stores,
    tenant_context,
)
from onionskin.cli._run import RunTenantOption, resume_hint
from onionskin.cli._watch import RunFailure, RunWatch, new_watch, report, watched
from onionskin.core.tenant import TenantContext
from onionskin.project import Project
from onionskin.runtime._result import RunResult
from onionskin.tenancy.checkpoints import TenantScopedCheckpointStore

FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="CHECKPOINT",
        help=(
            "The checkpoint to start from (see `onionskin checkpoints RUN`). Without it, "
            "continue a failed or interrupted run from its last step, under its own id."
        ),
        show_default=False,
    ),
]
ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project", metavar="DIR", help="The project whose pipeline runs it (default: here)."
    ),
]
StateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        metavar="KEY=VALUE",
        help=(
            "Fork: set this state key over the saved state (repeatable). VALUE is read as "
            'JSON when it parses (5, true, "x", [1, 2]), else as text.'
        ),
        show_default=False,
    ),
]


def replay(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run's id (see `runs`).")],
    checkpoint: FromOption = None,
    project: ProjectOption = Path("."),
    state: StateOption = None,
    tenant: RunTenantOption = None,
    db: ProjectDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a run from one of its checkpoints, or fork it with --state, as a new run.

    Without --from, continue a failed or interrupted run from its last step, under its id.
    """
    with clear_errors(), warnings_as_lines():
        edits = parse_state(state or ())
        if edits and checkpoint is None:
            raise CommandError("--state needs --from CHECKPOINT: a fork starts from a checkpoint")
        context = tenant_context(tenant, None)
        loaded = open_project(project)
        # Checked, never created: replaying from a database that is not there finds nothing.
        url = database_url(str(loaded.path) if db is None else db)
        start = _Start(run_id=run_id, checkpoint=checkpoint, edits=edits, context=context)
        outcome = asyncio.run(_replay(loaded, url, start, new_watch(as_json)))
    origin = {"from_run": run_id, "from_checkpoint": checkpoint}
    report(outcome, as_json=as_json, hint=partial(resume_hint, project, context), **origin)


def parse_state(items: Iterable[str]) -> dict[str, Any]:
    """`--state KEY=VALUE` options as a mapping (values: JSON when they parse, else text).

    Raises:
        CommandError: an item has no `=`, an empty key, or a key given twice.
    """
    edits: dict[str, Any] = {}  # Any: JSON values
    for item in items:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise CommandError(f"--state takes KEY=VALUE, got {item!r}")
        if key in edits:
            raise CommandError(f"--state sets {key!r} twice; give each key once")
        try:
            edits[key] = json.loads(raw)
        except json.JSONDecodeError:
            edits[key] = raw
    return edits


@dataclass(frozen=True, slots=True, kw_only=True)
class _Start:
    """Where the new run starts: which run, which checkpoint, what state, whose."""

    run_id: str
    checkpoint: str | None
    edits: Mapping[str, Any]
    """`--state` keys (JSON values: Any)."""
    context: TenantContext | None

    def unknown(self, what: str) -> CommandError:
        """The error for `what` (a run or a checkpoint of it) missing in the tenant's runs."""
        if self.context is None:
            return CommandError(
                f"no {what} without a tenant in this database (a tenant's runs need --tenant "
                "TENANT)"
            )
        return CommandError(f"no {what} for tenant {self.context.tenant_id!r} in this database")


async def _replay(
    project: Project, url: str, start: _Start, watch: RunWatch
) -> RunResult | RunFailure:
    async with project_stores(url) as stores:
        tenant = None if start.context is None else start.context.tenant_id
        scoped = TenantScopedCheckpointStore(base_store=stores.checkpoints, tenant_id=tenant)
        if start.checkpoint is None:
            found = await scoped.latest_checkpoint(start.run_id)
            if found is None:
                raise start.unknown(f"run {start.run_id!r}")
            if found.status == "completed":
                # Said before the stack is built (and its plugins load): nothing will run.
                raise CommandError(
                    f"run {start.run_id!r} completed: nothing to continue; replay or fork it "
                    "from one of its checkpoints with --from CHECKPOINT"
                )
        else:
            found = await scoped.get_checkpoint(start.checkpoint)
            if found is None or found.run_id != start.run_id:
                raise start.unknown(f"checkpoint {start.checkpoint!r} in run {start.run_id!r}")
        orchestrator = build_orchestrator(project, check_name(project, found.pipeline_id), stores)
        context, checkpoint = start.context, start.checkpoint

        async def begin(watch: RunWatch) -> RunResult:
            if checkpoint is None:
                return await orchestrator.resume(start.run_id, context=context, on_event=watch)
            if start.edits:
                return await orchestrator.fork(
                    checkpoint, state=start.edits, context=context, on_event=watch
                )
            return await orchestrator.replay(checkpoint, context=context, on_event=watch)

        return await watched(watch, begin)
