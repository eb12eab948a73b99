"""`POST .../execute`: run a pipeline for the caller's tenant, as JSON or as an event stream.

- `POST /api/v1/pipelines/{name}/execute`: the tenant from the credentials (or `X-Org-ID`);
- `POST /api/v1/organizations/{org_id}/pipelines/{name}/execute`: the path names it too;
- `POST /api/v1/admin/pipelines/execute` (seed 000): the pipeline in the body, for callers
  whose `org_role` is `admin`, in their own organization.

With `"stream": true` (or `Accept: text/event-stream`) the answer is the run's events as
Server-Sent Events; otherwise one JSON object once the run ends. A failed run answers, in
JSON, with the status `onionskin.server.errors` maps its error to; in a stream, with a last
`run_failed` frame carrying that status. Errors before the run starts (an unknown pipeline,
malformed content) are ordinary error responses in both forms.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from onionskin.runtime._result import RunResult
from onionskin.server.errors import problem_for, problem_response, problem_responses
from onionskin.server.runner import PipelineRunner
from onionskin.server.schemas import AdminExecuteRequest, ExecuteRequest, ExecuteResponse
from onionskin.server.settings import ServerSettings
from onionskin.server.sse import EventStreamResponse, json_value, run_event_stream
from onionskin.server.tenancy import RequestTenant, admin_tenant, request_tenant

logger = logging.getLogger("onionskin.server")

# Every route here authenticates through its tenant dependency (`request_tenant` and
# `admin_tenant` call `authenticated` themselves; tests/server/test_execute_auth.py checks
# each route), not on the router as the other /api/v1 routers do: each dependency FastAPI
# solves costs CPU on every run request, so these routes have exactly one.
router = APIRouter(prefix="/api/v1", tags=["pipelines"])

_STREAM_DOC = (
    "With `stream: true` or `Accept: text/event-stream`: one SSE frame per run event "
    "(`event: run_started`, `call_started`, `call_finished`, `call_failed`, `text_delta`, "
    "then `run_completed` or `run_failed`), `data:` its JSON, `id:` its sequence number."
)
_RESPONSES = {
    200: {
        "description": "The run completed (JSON), or its event stream (SSE).",
        "content": {
            "text/event-stream": {"schema": {"type": "string", "description": _STREAM_DOC}}
        },
    },
    **problem_responses(400, 401, 402, 403, 404, 413, 422, 429, 500, 502, 503, 504),
}
PipelineName = Annotated[str, Path(description="A pipeline or agent of the project.")]
OrgId = Annotated[str, Path(description="The organization; must match the credentials'.")]


def _runner(request: Request) -> PipelineRunner:
    runner: PipelineRunner = request.app.state.runner  # set by the app's lifespan
    return runner


def _wants_stream(request: Request, body: ExecuteRequest) -> bool:
    if body.stream is not None:
        return body.stream
    return "text/event-stream" in request.headers.get("accept", "")


def _failed(error: Exception, tenant: RequestTenant) -> Response:
    problem = problem_for(error)
    if problem.status >= 500:
        logger.error("request %s: the run failed", tenant.request_id, exc_info=error)
    return problem_response(problem, request_id=tenant.request_id)


async def _stream(
    request: Request, name: str, body: ExecuteRequest, tenant: RequestTenant
) -> Response:
    runner = _runner(request)
    events = runner.events(name, body, tenant)
    try:
        # The first event (run_started) is awaited here, so that what fails before the run
        # starts (malformed content, bad state) is an ordinary error response.
        first = await events.__anext__()
    except Exception as error:
        await events.aclose()
        return _failed(error, tenant)
    runner.emit(first)
    settings: ServerSettings = request.app.state.settings
    frames = run_event_stream(
        events, first, ping_seconds=settings.sse_ping_seconds, on_event=runner.emit
    )
    return EventStreamResponse(
        frames, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _respond(
    request: Request, name: str, body: ExecuteRequest, tenant: RequestTenant
) -> Response | ExecuteResponse:
    if _wants_stream(request, body):
        return await _stream(request, name, body, tenant)
    runner = _runner(request)
    runner.orchestrator(name)  # an unknown name is a 404 like any request error
    try:
        result: RunResult = await runner.execute(name, body, tenant)
    except Exception as error:
        return _failed(error, tenant)
    return ExecuteResponse.of(result, output=json_value(result.output))


@router.post(
    "/pipelines/{name}/execute",
    response_model=ExecuteResponse,
    responses=_RESPONSES,
    summary="Run a pipeline for the caller's organization",
    operation_id="execute_pipeline",
)
async def execute_pipeline(
    request: Request,
    name: PipelineName,
    body: ExecuteRequest,
    tenant: Annotated[RequestTenant, Depends(request_tenant)],
) -> Response | ExecuteResponse:
    """Run pipeline (or agent) `name` in the organization the credentials name."""
    return await _respond(request, name, body, tenant)


@router.post(
    "/organizations/{org_id}/pipelines/{name}/execute",
    response_model=ExecuteResponse,
    responses=_RESPONSES,
    summary="Run a pipeline in the organization the path names",
    operation_id="execute_org_pipeline",
)
async def execute_org_pipeline(
    request: Request,
    org_id: OrgId,
    name: PipelineName,
    body: ExecuteRequest,
    tenant: Annotated[RequestTenant, Depends(request_tenant)],
) -> Response | ExecuteResponse:
    """Run pipeline (or agent) `name` in `org_id`, which must be the credentials' own."""
    return await _respond(request, name, body, tenant)


@router.post(
    "/admin/pipelines/execute",
    response_model=ExecuteResponse,
    responses=_RESPONSES,
    summary="Run a pipeline as an organization admin (seed 000)",
    operation_id="execute_admin_pipeline",
)
async def execute_admin_pipeline(
    request: Request,
    body: AdminExecuteRequest,
    tenant: Annotated[RequestTenant, Depends(admin_tenant)],
) -> Response | ExecuteResponse:
    """Run the pipeline the body names, in the caller's organization; needs org_role admin."""
    return await _respond(request, body.pipeline, body, tenant)
