"""The organization's runs: list them, show one and its checkpoints, replay or fork it.

- `GET /api/v1/runs?limit=50`: the runs, the most recently started first;
- `GET /api/v1/runs/{run_id}` and `GET /api/v1/runs/{run_id}/checkpoints`;
- `POST /api/v1/runs/{run_id}/replay` `{"checkpoint_id", "state"}`: a new run from that
  checkpoint (`orchestrator.replay`), or a fork with `state` set over the saved state
  (`orchestrator.fork`); the answer is `execute`'s JSON form.

Each also under `/api/v1/organizations/{org_id}/...`. Every read goes through a
`TenantScopedCheckpointStore` bound to the caller's organization (seed 000), so another
tenant's run or checkpoint is unknown here, exactly like one that does not exist: 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from onionskin.core.context import request_metadata_scope
from onionskin.server.auth import authenticated
from onionskin.server.routes._run_bodies import (
    CheckpointsBody,
    ReplayRequest,
    RunBody,
    RunsBody,
    checkpoint_body,
    run_body,
    summarize,
)
from onionskin.server.routes._tenant_routes import (
    READ_ERRORS,
    RUN_ERRORS,
    checkpoints_for,
    failure_response,
    not_found,
    runner_of,
    tenant_route,
    well_formed,
)
from onionskin.server.schemas import ExecuteResponse
from onionskin.server.sse import json_value
from onionskin.server.tenancy import RequestTenant, request_tenant
from onionskin.stores.checkpoints import Checkpoint

router = APIRouter(prefix="/api/v1", tags=["runs"], dependencies=[Depends(authenticated)])

Tenant = Annotated[RequestTenant, Depends(request_tenant)]
RunId = Annotated[str, Path(description="A run of the organization (see `GET /runs`).")]
MAX_RUNS = 200
"""The most runs one list answers (each costs a read of its latest checkpoint)."""


async def _checkpoints(request: Request, tenant: RequestTenant, run_id: str) -> list[Checkpoint]:
    """The run's checkpoints in the tenant's partition; 404 when there are none."""
    found = (
        await checkpoints_for(request, tenant).get_checkpoints(run_id)
        if well_formed(run_id)
        else []
    )
    if not found:
        raise not_found(f"run {run_id!r}")
    return found


@tenant_route(
    router,
    "GET",
    "/runs",
    operation_id="list_runs",
    org_operation_id="list_org_runs",
    response_model=RunsBody,
    responses=READ_ERRORS,
    summary="The organization's runs, newest first",
)
async def list_runs(
    request: Request,
    tenant: Tenant,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS, description="At most this many runs.")] = 50,
) -> RunsBody:
    """The organization's runs, the most recently started first."""
    store = checkpoints_for(request, tenant)
    found = await store.list_runs(limit=limit)
    return RunsBody(
        runs=[run_body(run, await store.latest_checkpoint(run.run_id)) for run in found]
    )


@tenant_route(
    router,
    "GET",
    "/runs/{run_id}",
    operation_id="get_run",
    org_operation_id="get_org_run",
    response_model=RunBody,
    responses=READ_ERRORS,
    summary="One run of the organization",
)
async def get_run(request: Request, run_id: RunId, tenant: Tenant) -> RunBody:
    """One run: status, times, checkpoints and its latest step."""
    found = await _checkpoints(request, tenant, run_id)
    return run_body(summarize(found), found[-1])


@tenant_route(
    router,
    "GET",
    "/runs/{run_id}/checkpoints",
    operation_id="list_checkpoints",
    org_operation_id="list_org_checkpoints",
    response_model=CheckpointsBody,
    responses=READ_ERRORS,
    summary="A run's checkpoints, in step order",
)
async def list_checkpoints(request: Request, run_id: RunId, tenant: Tenant) -> CheckpointsBody:
    """A run's checkpoints in step order: what each step did, the state and the messages."""
    found = await _checkpoints(request, tenant, run_id)
    return CheckpointsBody(checkpoints=[checkpoint_body(checkpoint) for checkpoint in found])


@tenant_route(
    router,
    "POST",
    "/runs/{run_id}/replay",
    operation_id="replay_run",
    org_operation_id="replay_org_run",
    response_model=ExecuteResponse,
    responses=RUN_ERRORS,
    summary="Replay a run from one of its checkpoints, or fork it with new state",
)
async def replay_run(
    request: Request, run_id: RunId, body: ReplayRequest, tenant: Tenant
) -> Response | ExecuteResponse:
    """Start a new run from `checkpoint_id`; with `state`, a fork with those keys set."""
    checkpoint_id = body.checkpoint_id
    found = (
        await checkpoints_for(request, tenant).get_checkpoint(checkpoint_id)
        if well_formed(run_id) and well_formed(checkpoint_id)
        else None
    )
    if found is None or found.run_id != run_id:
        raise not_found(f"checkpoint {checkpoint_id!r} of run {run_id!r}")
    runner = runner_of(request)
    orchestrator = runner.orchestrator(found.pipeline_id)  # gone from the project: 404
    try:
        with request_metadata_scope(tenant.metadata()):
            if body.state is None:
                result = await orchestrator.replay(
                    checkpoint_id, context=tenant.context, on_event=runner.emit
                )
            else:
                result = await orchestrator.fork(
                    checkpoint_id, state=body.state, context=tenant.context, on_event=runner.emit
                )
    except Exception as error:
        return failure_response(error, tenant)
    return ExecuteResponse.of(result, output=json_value(result.output))
