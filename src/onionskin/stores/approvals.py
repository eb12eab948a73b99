"""The approval queue: calls a budget stopped, waiting for an operator's decision.

A request is submitted *pending* and decided once, *approved* or *denied*, by a named
operator; a second decision, also a concurrent one from another worker, is refused with
`ApprovalDecidedError` and changes nothing. Every read and decision names its tenant: a
request of another tenant does not exist for it (`ApprovalNotFoundError`).
`MemoryApprovalQueue` is the reference; `SqlApprovalQueue` (`onionskin.stores.sql_approvals`)
keeps the same contract on SQLite and PostgreSQL.

Over 200 lines: the value, its checks, the protocol, the reference backend, and two errors
that move to `onionskin.core.errors` later.
"""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, get_args, runtime_checkable

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ConfigError,
)
from onionskin.core.ids import new_id
from onionskin.stores.ledger import check_count, check_limit, check_name, check_tenant

ApprovalStatus = Literal["pending", "approved", "denied"]
MAX_REASON_LENGTH = 2000
"""The longest reason a request may give."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
    """A call waiting for an operator, and what was decided."""

    approval_id: str
    tenant_id: str | None
    run_id: str | None
    """The run that was stopped; running it again with this id after approval resumes it."""
    checkpoint_id: str | None
    """The run's latest checkpoint when it was stopped, if one was known."""
    reason: str
    amount_micros: int
    """What the stopped call was estimated to cost, in micro-dollars."""
    status: ApprovalStatus
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    """The operator who decided."""


def check_submission(
    tenant_id: object, run_id: object, checkpoint_id: object, reason: object, amount: object
) -> None:
    """Refuse a malformed request before anything is stored."""
    check_tenant(tenant_id)
    check_name("ApprovalRequest", "run_id", run_id, optional=True)
    check_name("ApprovalRequest", "checkpoint_id", checkpoint_id, optional=True)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise ConfigError(
            f"an approval request needs a reason of 1 to {MAX_REASON_LENGTH} characters, "
            f"got {reason!r}"
        )
    check_count("ApprovalRequest", "amount_micros", amount)


def check_lookup(approval_id: object, tenant_id: object) -> None:
    """An approval id and tenant to look up are well formed."""
    check_name("ApprovalQueue", "approval_id", approval_id)
    check_tenant(tenant_id)


def check_status(status: object) -> None:
    """`status` is None (any) or one of the three statuses."""
    if status is not None and status not in get_args(ApprovalStatus):
        raise ConfigError(f"status must be pending, approved, denied or None, got {status!r}")


@runtime_checkable
class ApprovalQueue(Protocol):
    """Where stopped calls wait for an operator's decision."""

    async def submit(
        self,
        *,
        tenant_id: str | None,
        run_id: str | None,
        reason: str,
        amount_micros: int = 0,
        checkpoint_id: str | None = None,
    ) -> ApprovalRequest:
        """Queue a new pending request and return it."""
        ...

    async def get(self, approval_id: str, *, tenant_id: str | None) -> ApprovalRequest | None:
        """The tenant's request `approval_id`, or None."""
        ...

    async def approve(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Approve a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        ...

    async def deny(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Deny a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        ...

    async def list(
        self,
        *,
        tenant_id: str | None,
        status: ApprovalStatus | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[ApprovalRequest]:
        """The tenant's requests, oldest first, by status and run if given."""
        ...

    async def aclose(self) -> None:
        """Release the queue's connections, if any."""
        ...


def new_request(
    *,
    tenant_id: str | None,
    run_id: str | None,
    checkpoint_id: str | None,
    reason: str,
    amount_micros: int,
    created_at: datetime,
) -> ApprovalRequest:
    """A new pending request, its fields checked (every queue submits through this)."""
    check_submission(tenant_id, run_id, checkpoint_id, reason, amount_micros)
    return ApprovalRequest(
        approval_id=new_id(),
        tenant_id=tenant_id,
        run_id=run_id,
        checkpoint_id=checkpoint_id,
        reason=reason,
        amount_micros=amount_micros,
        status="pending",
        created_at=created_at,
    )


class MemoryApprovalQueue:
    """The approval queue of one process, in memory: the reference backend."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._requests: dict[tuple[str, str], ApprovalRequest] = {}
        self._lock = threading.Lock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def submit(
        self,
        *,
        tenant_id: str | None,
        run_id: str | None,
        reason: str,
        amount_micros: int = 0,
        checkpoint_id: str | None = None,
    ) -> ApprovalRequest:
        """Queue a new pending request and return it."""
        request = new_request(
            tenant_id=tenant_id,
            run_id=run_id,
            checkpoint_id=checkpoint_id,
            reason=reason,
            amount_micros=amount_micros,
            created_at=self._now(),
        )
        with self._lock:
            self._requests[(tenant_id or "", request.approval_id)] = request
        return request

    async def get(self, approval_id: str, *, tenant_id: str | None) -> ApprovalRequest | None:
        """The tenant's request `approval_id`, or None."""
        check_lookup(approval_id, tenant_id)
        with self._lock:
            return self._requests.get((tenant_id or "", approval_id))

    async def approve(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Approve a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        return self._decide(approval_id, tenant_id, operator, "approved")

    async def deny(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Deny a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        return self._decide(approval_id, tenant_id, operator, "denied")

    async def list(
        self,
        *,
        tenant_id: str | None,
        status: ApprovalStatus | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[ApprovalRequest]:
        """The tenant's requests, oldest first, by status and run if given."""
        check_tenant(tenant_id)
        check_status(status)
        check_name("ApprovalQueue", "run_id", run_id, optional=True)
        check_limit(limit)
        tenant = tenant_id or ""
        with self._lock:
            found = [
                request
                for (owner, _), request in self._requests.items()
                if owner == tenant
                and (status is None or request.status == status)
                and (run_id is None or request.run_id == run_id)
            ]
        found.sort(key=lambda request: (request.created_at, request.approval_id))
        return found[:limit]

    async def aclose(self) -> None:
        """Nothing to release."""

    def _decide(
        self, approval_id: str, tenant_id: str | None, operator: str, status: ApprovalStatus
    ) -> ApprovalRequest:
        check_lookup(approval_id, tenant_id)
        check_name("ApprovalQueue", "operator", operator)
        key = (tenant_id or "", approval_id)
        with self._lock:
            request = self._requests.get(key)
            if request is None:
                raise ApprovalNotFoundError(approval_id, tenant_id)
            if request.status != "pending":
                raise ApprovalDecidedError(approval_id, request.status)
            decided = replace(request, status=status, decided_at=self._now(), decided_by=operator)
            self._requests[key] = decided
        return decided
