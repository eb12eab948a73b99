"""What the tenant-scoped resource routes share: twin paths, 404s, the stores on the app.

Every resource route exists twice, as `/api/v1/<path>` (the tenant from the credentials or
`X-Org-ID`) and as `/api/v1/organizations/{org_id}/<path>` (the path names it too, and must
agree: `request_tenant` refuses a conflict with 403). `tenant_route` registers both on one
function.

Ids in paths are the caller's words: one that is malformed, unknown or another tenant's is
the same 404, so an answer never says whether an id exists elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.exceptions import HTTPException

from onionskin.server.errors import problem_for, problem_response, problem_responses
from onionskin.server.runner import PipelineRunner
from onionskin.server.tenancy import RequestTenant
from onionskin.stores.approvals import ApprovalQueue
from onionskin.tenancy.checkpoints import TenantScopedCheckpointStore

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("onionskin.server")

MAX_ID_CHARS = 200
"""The longest id a path accepts (the stores' own limits are 200 and 255)."""
READ_ERRORS = problem_responses(401, 403, 404, 422, 500, 503)
"""The errors every read route may answer."""
RUN_ERRORS = problem_responses(400, 401, 402, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504)
"""The errors of a route that runs a pipeline (as `execute` answers them) or decides."""


def _org_path(
    org_id: Annotated[str, Path(description="The organization; must match the credentials'.")],
) -> None:
    """Documents `{org_id}`; `request_tenant` reads it from the path and checks it."""


def tenant_route(
    router: APIRouter,
    method: str,
    path: str,
    *,
    operation_id: str,
    org_operation_id: str,
    **options: Any,
) -> Callable[[F], F]:
    """Register the decorated endpoint at `path` and at `/organizations/{org_id}{path}`.

    `options` are `APIRouter.add_api_route` options (Any: FastAPI's own types).
    """

    def register(endpoint: F) -> F:
        router.add_api_route(path, endpoint, methods=[method], operation_id=operation_id, **options)
        router.add_api_route(
            f"/organizations/{{org_id}}{path}",
            endpoint,
            methods=[method],
            operation_id=org_operation_id,
            dependencies=[Depends(_org_path)],
            **options,
        )
        return endpoint

    return register


def well_formed(value: str) -> bool:
    """Whether `value` could be an id at all: printable, 1 to `MAX_ID_CHARS` characters."""
    return 0 < len(value) <= MAX_ID_CHARS and value.isprintable()


def not_found(what: str) -> HTTPException:
    """The 404 for `what` (`"run 'x'"`): also for another tenant's, which is never revealed."""
    return HTTPException(
        status_code=404, detail=f"no {what} in this organization; list them to find their ids"
    )


def runner_of(request: Request) -> PipelineRunner:
    """The app's pipeline runner (set by its lifespan)."""
    runner: PipelineRunner = request.app.state.runner
    return runner


def approvals_of(request: Request) -> ApprovalQueue:
    """The app's approval queue (set by its lifespan)."""
    approvals: ApprovalQueue = request.app.state.approvals
    return approvals


def checkpoints_for(request: Request, tenant: RequestTenant) -> TenantScopedCheckpointStore:
    """The app's checkpoint store, bound to `tenant`: no call can reach another tenant's runs."""
    return TenantScopedCheckpointStore(
        base_store=runner_of(request).checkpoints, tenant_id=tenant.org_id
    )


def failure_response(error: Exception, tenant: RequestTenant) -> Response:
    """The problem+json answer of a run that failed (logged when it is the server's fault)."""
    problem = problem_for(error)
    if problem.status >= 500:
        logger.error("request %s: the run failed", tenant.request_id, exc_info=error)
    return problem_response(problem, request_id=tenant.request_id)
