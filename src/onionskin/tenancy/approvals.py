"""Resuming a run an operator approved: the approval queue's way back into the run.

`CostMiddleware` stops a run whose tenant's budget is spent and files an approval request
naming the run and its latest checkpoint; the run ends *failed* with
`ApprovalRequiredError`. Once an operator approves, `resume_approved` continues that run
from its last checkpoint: nothing that already ran runs (or is billed) again.
"""

from __future__ import annotations

from onionskin.core.errors import ApprovalDecidedError, ApprovalNotFoundError, StoreError
from onionskin.core.tenant import TenantContext
from onionskin.runtime._result import RunResult
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.stores.approvals import ApprovalQueue


async def resume_approved(
    orchestrator: Orchestrator,
    approvals: ApprovalQueue,
    approval_id: str,
    *,
    context: TenantContext | None = None,
) -> RunResult:
    """Resume the run behind the approved request `approval_id` of `context`'s tenant.

    Raises:
        ApprovalNotFoundError: the tenant has no such request (another tenant's is not
            revealed).
        ApprovalDecidedError: the request was denied.
        StoreError: the request is still pending, or the run has no checkpoints.
    """
    tenant_id = None if context is None else context.tenant_id
    request = await approvals.get(approval_id, tenant_id=tenant_id)
    if request is None or request.run_id is None:
        raise ApprovalNotFoundError(approval_id, tenant_id)
    if request.status == "pending":
        raise StoreError(
            f"approval request {approval_id!r} is still pending: an operator must approve it "
            "before its run can resume"
        )
    if request.status == "denied":
        raise ApprovalDecidedError(approval_id, request.status)
    return await orchestrator.resume(request.run_id, context=context)
