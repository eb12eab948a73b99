"""The JSON of approval requests and decisions, as `routes.approvals` answers them.

A request records what the stopped call would have cost (`amount_usd`); `limit_usd` and
`spent_usd` are the tenant's monthly budget and its spend in the request's month, read when
the request is shown (the queue keeps only the text of the reason as of the stop).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from onionskin.server.errors import Problem, ProblemDetails
from onionskin.server.routes._budget import monthly_budget, usd
from onionskin.server.routes._run_bodies import iso
from onionskin.server.routes._tenant_routes import runner_of
from onionskin.server.schemas import ExecuteResponse
from onionskin.server.tenancy import RequestTenant
from onionskin.stores.approvals import MAX_REASON_LENGTH, ApprovalRequest
from onionskin.stores.ledger import period_of


class ApprovalBody(BaseModel):
    """A call a budget stopped, waiting for (or given) an operator's decision."""

    request_id: str
    run_id: str | None
    checkpoint_id: str | None
    status: Literal["pending", "approved", "denied"]
    created_at: str = Field(description="ISO 8601, UTC.")
    reason: str
    amount_usd: str = Field(description="What the stopped call was estimated to cost.")
    limit_usd: str | None = Field(description="The monthly budget; null when none is set.")
    spent_usd: str = Field(description="The spend in the request's month.")
    decided_at: str | None = Field(description="ISO 8601, UTC; null while pending.")
    decided_by: str | None = Field(description="The operator who decided.")


class ApprovalsBody(BaseModel):
    """The organization's approval requests, oldest first."""

    approvals: list[ApprovalBody]


class DecisionRequest(BaseModel):
    """An operator's decision, with an optional note for the audit log."""

    model_config = ConfigDict(extra="forbid", strict=True)

    note: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


class DecisionBody(BaseModel):
    """The decided request and, after an approval, the resumed run."""

    request: ApprovalBody
    run: ExecuteResponse | None = Field(
        description="The resumed run's result; null after a denial or when nothing resumed."
    )
    run_error: ProblemDetails | None = Field(
        description="Why the resumed run failed (the approval stands); null otherwise."
    )


async def approval_body(request: Request, asked: ApprovalRequest) -> ApprovalBody:
    """The JSON of `asked`, with the tenant's budget and spend for its month."""
    tenant = asked.tenant_id or ""
    spent = await runner_of(request).ledger.spent(
        tenant_id=asked.tenant_id, period=period_of(asked.created_at)
    )
    limit = await monthly_budget(request, tenant) if tenant else None
    return ApprovalBody(
        request_id=asked.approval_id,
        run_id=asked.run_id,
        checkpoint_id=asked.checkpoint_id,
        status=asked.status,
        created_at=iso(asked.created_at),
        reason=asked.reason,
        amount_usd=usd(asked.amount_micros),
        limit_usd=None if limit is None else usd(limit),
        spent_usd=usd(spent),
        decided_at=None if asked.decided_at is None else iso(asked.decided_at),
        decided_by=asked.decided_by,
    )


def problem_body(problem: Problem, tenant: RequestTenant) -> ProblemDetails:
    """`problem` as the body a problem+json answer would have had."""
    return ProblemDetails(
        title=HTTPStatus(problem.status).phrase,
        status=problem.status,
        detail=problem.detail,
        code=problem.code,
        request_id=tenant.request_id,
        **problem.extra,
    )
