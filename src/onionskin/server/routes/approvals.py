"""The organization's approval queue: list the stopped calls, approve or deny each once.

- `GET /api/v1/approvals?status=pending`: the requests, oldest first (all without `status`);
- `POST /api/v1/approvals/{request_id}/approve` `{"note": ...}`: approve, then resume the run
  from its last checkpoint (nothing that ran is run or billed again); the answer is the
  decided request and the resumed run's JSON result (`execute`'s form), or `run_error`;
- `POST /api/v1/approvals/{request_id}/deny`: deny; the run stays failed, and asking to
  resume it is refused (`BudgetExceededError`, or 409 for the decided request).

Each also under `/api/v1/organizations/{org_id}/...`. Another tenant's request is unknown
here (404), like one that does not exist; a second decision is 409 and changes nothing.
The queue has no column for the note yet: it goes to the log with the decision.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.exceptions import HTTPException

from onionskin.core.context import request_metadata_scope
from onionskin.core.errors import ApprovalDecidedError, ApprovalNotFoundError
from onionskin.server.auth import authenticated
from onionskin.server.errors import problem_for
from onionskin.server.routes._approval_bodies import (
    ApprovalsBody,
    DecisionBody,
    DecisionRequest,
    approval_body,
    problem_body,
)
from onionskin.server.routes._tenant_routes import (
    READ_ERRORS,
    RUN_ERRORS,
    approvals_of,
    checkpoints_for,
    not_found,
    runner_of,
    tenant_route,
    well_formed,
)
from onionskin.server.schemas import ExecuteResponse
from onionskin.server.sse import json_value
from onionskin.server.tenancy import RequestTenant, request_tenant
from onionskin.stores.approvals import ApprovalRequest
from onionskin.stores.ledger import MAX_LIMIT

logger = logging.getLogger("onionskin.server")

router = APIRouter(prefix="/api/v1", tags=["approvals"], dependencies=[Depends(authenticated)])

Tenant = Annotated[RequestTenant, Depends(request_tenant)]
RequestId = Annotated[str, Path(description="An approval request of the organization.")]


@tenant_route(
    router,
    "GET",
    "/approvals",
    operation_id="list_approvals",
    org_operation_id="list_org_approvals",
    response_model=ApprovalsBody,
    responses=READ_ERRORS,
    summary="The organization's approval requests, oldest first",
)
async def list_approvals(
    request: Request,
    tenant: Tenant,
    status: Annotated[
        Literal["pending", "approved", "denied"] | None,
        Query(description="Only requests with this status (default: all)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.")] = 100,
) -> ApprovalsBody:
    """The organization's approval requests, oldest first."""
    found = await approvals_of(request).list(tenant_id=tenant.org_id, status=status, limit=limit)
    return ApprovalsBody(approvals=[await approval_body(request, asked) for asked in found])


async def _decide(
    request: Request, tenant: RequestTenant, request_id: str, verdict: Literal["approve", "deny"]
) -> ApprovalRequest:
    if not well_formed(request_id):
        raise not_found(f"approval request {request_id!r}")
    queue = approvals_of(request)
    operator = tenant.user_id or "anonymous"  # anonymous local mode has no user
    decide = queue.approve if verdict == "approve" else queue.deny
    try:
        return await decide(request_id, tenant_id=tenant.org_id, operator=operator)
    except ApprovalNotFoundError:
        raise not_found(f"approval request {request_id!r}") from None
    except ApprovalDecidedError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None


async def _resume(
    request: Request, tenant: RequestTenant, approved: ApprovalRequest
) -> DecisionBody:
    """Resume the approved request's run; a run that completed (or has none) is left alone."""
    run_id = approved.run_id
    latest = (
        None if run_id is None else await checkpoints_for(request, tenant).latest_checkpoint(run_id)
    )
    if run_id is None or latest is None or latest.status == "completed":
        body = await approval_body(request, approved)
        return DecisionBody(request=body, run=None, run_error=None)
    runner = runner_of(request)
    try:
        orchestrator = runner.orchestrator(latest.pipeline_id)
        # orchestrator.resume, not tenancy.approvals.resume_approved: the request was just
        # approved here, and only resume() takes the sink that feeds the live dashboard.
        with request_metadata_scope(tenant.metadata()):
            result = await orchestrator.resume(run_id, context=tenant.context, on_event=runner.emit)
    except Exception as error:
        problem = problem_for(error)
        if problem.status >= 500:
            logger.error("request %s: the resumed run failed", tenant.request_id, exc_info=error)
        body = await approval_body(request, approved)
        return DecisionBody(request=body, run=None, run_error=problem_body(problem, tenant))
    run = ExecuteResponse.of(result, output=json_value(result.output))
    # Read after the run: the spend shown includes what the resumed run cost.
    return DecisionBody(request=await approval_body(request, approved), run=run, run_error=None)


def _log(decided: ApprovalRequest, note: DecisionRequest | None) -> None:
    logger.info(
        "approval request %s of tenant %r %s by %r; note: %r",
        decided.approval_id,
        decided.tenant_id,
        decided.status,
        decided.decided_by,
        None if note is None else note.note,
    )


@tenant_route(
    router,
    "POST",
    "/approvals/{request_id}/approve",
    operation_id="approve_request",
    org_operation_id="approve_org_request",
    response_model=DecisionBody,
    responses=RUN_ERRORS,
    summary="Approve a request, then resume its run",
)
async def approve_request(
    request: Request, request_id: RequestId, tenant: Tenant, body: DecisionRequest | None = None
) -> DecisionBody:
    """Approve the request and resume its run from its last checkpoint."""
    decided = await _decide(request, tenant, request_id, "approve")
    _log(decided, body)
    return await _resume(request, tenant, decided)


@tenant_route(
    router,
    "POST",
    "/approvals/{request_id}/deny",
    operation_id="deny_request",
    org_operation_id="deny_org_request",
    response_model=DecisionBody,
    responses=RUN_ERRORS,
    summary="Deny a request: its run stays failed",
)
async def deny_request(
    request: Request, request_id: RequestId, tenant: Tenant, body: DecisionRequest | None = None
) -> DecisionBody:
    """Deny the request; its run stays failed and will not be resumed."""
    decided = await _decide(request, tenant, request_id, "deny")
    _log(decided, body)
    return DecisionBody(request=await approval_body(request, decided), run=None, run_error=None)
