"""`SqlApprovalQueue`: the approval queue on SQLite (embedded default) or PostgreSQL.

A decision is one conditional UPDATE (`... WHERE status = 'pending'`): of two workers
deciding the same request at once, the database lets exactly one change it; the other
finds it decided. Every statement runs in a transaction bound to its tenant (row-level
security on PostgreSQL) and also names the tenant in its WHERE clause (SQLite has no RLS).

Over 200 lines: the schema, the statements and the store that runs them are read together.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ApprovalDecidedError, ApprovalNotFoundError, ConfigError
from onionskin.stores._migrations import Migration, ensure_schema, tenant_table_policy
from onionskin.stores._rows import Statements
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.approvals import (
    ApprovalQueue,
    ApprovalRequest,
    ApprovalStatus,
    MemoryApprovalQueue,
    check_lookup,
    check_status,
    new_request,
)
from onionskin.stores.ledger import check_limit, check_name, check_tenant

_TABLE = """
CREATE TABLE onionskin_approvals (
    tenant_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    run_id TEXT,
    checkpoint_id TEXT,
    reason TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at {time} NOT NULL,
    decided_at {time},
    decided_by TEXT,
    PRIMARY KEY (tenant_id, approval_id)
);
CREATE INDEX onionskin_approvals_status ON onionskin_approvals (tenant_id, status, created_at)"""

APPROVAL_MIGRATIONS = (
    Migration(
        version=1,
        name="approval requests",
        sqlite=_TABLE.format(time="TEXT").split(";"),
        postgresql=[
            *_TABLE.format(time="TIMESTAMPTZ").split(";"),
            *tenant_table_policy("onionskin_approvals"),
        ],
    ),
)
"""The approval queue's schema steps (component `"approvals"`)."""

_COLUMNS = (
    "approval_id, run_id, checkpoint_id, reason, amount_micros, status, created_at, "
    "decided_at, decided_by"
)
_INSERT = (
    f"INSERT INTO onionskin_approvals (tenant_id, {_COLUMNS}) VALUES (:tenant, :approval_id, "
    ":run_id, :checkpoint_id, :reason, :amount, 'pending', :now, NULL, NULL)"
)
_GET = f"SELECT {_COLUMNS} FROM onionskin_approvals WHERE tenant_id = :tenant AND approval_id = :id"
_DECIDE = (
    "UPDATE onionskin_approvals SET status = :status, decided_at = :now, decided_by = :operator "
    "WHERE tenant_id = :tenant AND approval_id = :id AND status = 'pending'"
)
_LIST = f"SELECT {_COLUMNS} FROM onionskin_approvals WHERE tenant_id = :tenant"
_ORDER = " ORDER BY created_at, approval_id LIMIT :limit"


class SqlApprovalQueue:
    """The approval queue in a SQL database, shared by every worker and the API.

    Open it with `await SqlApprovalQueue.open(url)`, which checks (SQLite: applies) the
    schema.
    """

    def __init__(
        self, database: SqlDatabase, *, clock: Clock = SYSTEM_CLOCK, owns_database: bool = False
    ) -> None:
        if not isinstance(database, SqlDatabase):
            raise ConfigError(f"SqlApprovalQueue needs a SqlDatabase, got {database!r}")
        self.database = database
        self.clock = clock
        self._owns_database = owns_database

    @classmethod
    async def open(
        cls, target: str | SqlDatabase, *, schema: str | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> SqlApprovalQueue:
        """Open the queue at a URL (or on a database); its schema must be current.

        Raises:
            StoreError: PostgreSQL's schema is behind (run `onionskin db migrate`).
        """
        database = SqlDatabase(target, schema=schema) if isinstance(target, str) else target
        try:
            await ensure_schema(database, "approvals", APPROVAL_MIGRATIONS)
        except BaseException:
            if isinstance(target, str):
                await database.aclose()
            raise
        return cls(database, clock=clock, owns_database=isinstance(target, str))

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
            created_at=datetime.fromtimestamp(self.clock.time(), UTC),
        )
        params = {
            "tenant": tenant_id or "",
            "approval_id": request.approval_id,
            "run_id": run_id,
            "checkpoint_id": checkpoint_id,
            "reason": reason,
            "amount": amount_micros,
            "now": self._time(request.created_at),
        }
        await self.database.write(lambda db: db.execute(_INSERT, params), tenant_id=tenant_id or "")
        return request

    async def get(self, approval_id: str, *, tenant_id: str | None) -> ApprovalRequest | None:
        """The tenant's request `approval_id`, or None."""
        check_lookup(approval_id, tenant_id)
        params = {"tenant": tenant_id or "", "id": approval_id}
        row = await self.database.read(
            lambda db: db.execute(_GET, params).first(), tenant_id=tenant_id or ""
        )
        return None if row is None else self._request(tenant_id, row)

    async def approve(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Approve a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        return await self._decide(approval_id, tenant_id, operator, "approved")

    async def deny(
        self, approval_id: str, *, tenant_id: str | None, operator: str
    ) -> ApprovalRequest:
        """Deny a pending request (ApprovalDecidedError if decided, NotFound if absent)."""
        return await self._decide(approval_id, tenant_id, operator, "denied")

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
        # Only the filters given: fixed SQL fragments, the values stay bound parameters.
        query = _LIST
        if status is not None:
            query += " AND status = :status"
        if run_id is not None:
            query += " AND run_id = :run_id"
        query += _ORDER
        params = {"tenant": tenant_id or "", "status": status, "run_id": run_id, "limit": limit}
        rows = await self.database.read(
            lambda db: db.execute(query, params).all(), tenant_id=tenant_id or ""
        )
        return [self._request(tenant_id, row) for row in rows]

    async def aclose(self) -> None:
        """Close the database if the queue opened it."""
        if self._owns_database:
            await self.database.aclose()

    async def _decide(
        self, approval_id: str, tenant_id: str | None, operator: str, status: ApprovalStatus
    ) -> ApprovalRequest:
        check_lookup(approval_id, tenant_id)
        check_name("ApprovalQueue", "operator", operator)
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        params = {
            "tenant": tenant_id or "",
            "id": approval_id,
            "status": status,
            "now": self._time(now),
            "operator": operator,
        }

        def decide(db: Statements) -> tuple[bool, tuple[Any, ...] | None]:
            changed = db.execute(_DECIDE, params).rowcount == 1
            return changed, db.execute(_GET, params).first()

        changed, row = await self.database.write(decide, tenant_id=tenant_id or "")
        if row is None:
            raise ApprovalNotFoundError(approval_id, tenant_id)
        request = self._request(tenant_id, row)
        if not changed:
            raise ApprovalDecidedError(approval_id, request.status)
        return request

    def _time(self, moment: datetime) -> datetime | str:
        # SQLite has no time type: a fixed ISO format in UTC, which sorts in time order.
        if self.database.dialect == "sqlite":
            return moment.astimezone(UTC).isoformat(timespec="microseconds")
        return moment

    @staticmethod
    def _request(tenant_id: str | None, row: tuple[Any, ...]) -> ApprovalRequest:
        approval_id, run_id, checkpoint_id, reason, amount, status, created, decided, by = row
        return ApprovalRequest(
            approval_id=approval_id,
            tenant_id=tenant_id,
            run_id=run_id,
            checkpoint_id=checkpoint_id,
            reason=reason,
            amount_micros=int(amount),
            status=status,
            created_at=_moment(created),
            decided_at=None if decided is None else _moment(decided),
            decided_by=by,
        )


def _moment(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value.astimezone(UTC)


async def open_approval_queue(url: str, *, clock: Clock = SYSTEM_CLOCK) -> ApprovalQueue:
    """Open the queue a URL names: `memory://`, `sqlite:///path.db` or `postgresql://...`."""
    if url == "memory://":
        return MemoryApprovalQueue(clock=clock)
    return await SqlApprovalQueue.open(url, clock=clock)
