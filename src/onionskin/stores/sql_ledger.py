"""`SqlCostLedger`: the cost ledger on SQLite (embedded default) or PostgreSQL.

Three tables: the entries, keyed by (tenant, call id); a running total per tenant and
period, updated in the same transaction as the insert so that reading a tenant's spend
costs one row however many calls it made; and the claimed alerts, one row per tenant,
period and threshold. Every statement runs in a transaction bound to its tenant (row-level
security on PostgreSQL) and also names the tenant in its WHERE clause (SQLite has no RLS).

Over 200 lines: the schema, the statements and the store that runs them are read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from onionskin.core.errors import ConfigError
from onionskin.stores._migrations import Migration, ensure_schema, tenant_table_policy
from onionskin.stores._rows import Statements, placeholders
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.ledger import (
    CostEntry,
    CostLedger,
    CostTotals,
    MemoryCostLedger,
    RecordOutcome,
    build_totals,
    check_limit,
    check_query,
    check_threshold,
    conflict,
    outcomes,
    unique_entries,
)

_TABLES = """
CREATE TABLE onionskin_cost_entries (
    tenant_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    run_id TEXT,
    agent TEXT,
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    period TEXT NOT NULL,
    recorded_at {time} NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);
CREATE INDEX onionskin_cost_entries_period
    ON onionskin_cost_entries (tenant_id, period, recorded_at);
CREATE TABLE onionskin_cost_totals (
    tenant_id TEXT NOT NULL,
    period TEXT NOT NULL,
    total_micros BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);
CREATE TABLE onionskin_cost_alerts (
    tenant_id TEXT NOT NULL,
    period TEXT NOT NULL,
    threshold_pct INTEGER NOT NULL,
    claimed_at {time} NOT NULL,
    PRIMARY KEY (tenant_id, period, threshold_pct)
)"""

LEDGER_MIGRATIONS = (
    Migration(
        version=1,
        name="cost entries, period totals and claimed alerts",
        sqlite=_TABLES.format(time="TEXT").split(";"),
        postgresql=[
            *_TABLES.format(time="TIMESTAMPTZ").split(";"),
            *tenant_table_policy("onionskin_cost_entries"),
            *tenant_table_policy("onionskin_cost_totals"),
            *tenant_table_policy("onionskin_cost_alerts"),
        ],
    ),
)
"""The ledger's schema steps (component `"ledger"`)."""

_COLUMNS = (
    "call_id, run_id, agent, model, input_tokens, output_tokens, cost_micros, period, recorded_at"
)
_ROW = (
    "(:tenant, :call_id{n}, :run_id{n}, :agent{n}, :model{n}, :input_tokens{n}, "
    ":output_tokens{n}, :cost_micros{n}, :period{n}, :recorded_at{n})"
)
_ADD = (
    "INSERT INTO onionskin_cost_totals (tenant_id, period, total_micros, calls) "
    "VALUES (:tenant, :period, :micros, :calls) ON CONFLICT (tenant_id, period) DO UPDATE SET "
    "total_micros = onionskin_cost_totals.total_micros + excluded.total_micros, "
    "calls = onionskin_cost_totals.calls + excluded.calls RETURNING total_micros"
)
_STORED = (
    f"SELECT {_COLUMNS} FROM onionskin_cost_entries WHERE tenant_id = :tenant "
    "AND call_id IN ({calls})"
)
_SPENT = (
    "SELECT total_micros FROM onionskin_cost_totals WHERE tenant_id = :tenant AND period = :period"
)
_GROUPS = (
    "SELECT agent, model, SUM(cost_micros), COUNT(*) FROM onionskin_cost_entries "
    "WHERE tenant_id = :tenant AND period = :period GROUP BY agent, model"
)
_ENTRIES = (
    f"SELECT {_COLUMNS} FROM onionskin_cost_entries WHERE tenant_id = :tenant "
    "AND period = :period ORDER BY recorded_at DESC, call_id DESC LIMIT :limit"
)
_CLAIM = (
    "INSERT INTO onionskin_cost_alerts (tenant_id, period, threshold_pct, claimed_at) "
    "VALUES (:tenant, :period, :pct, :now) ON CONFLICT (tenant_id, period, threshold_pct) "
    "DO NOTHING"
)


class SqlCostLedger:
    """The cost ledger in a SQL database, shared by every worker that opens it.

    Open it with `await SqlCostLedger.open(url)`, which checks (SQLite: applies) the schema.
    """

    def __init__(self, database: SqlDatabase, *, owns_database: bool = False) -> None:
        if not isinstance(database, SqlDatabase):
            raise ConfigError(f"SqlCostLedger needs a SqlDatabase, got {database!r}")
        self.database = database
        self._owns_database = owns_database

    @classmethod
    async def open(cls, target: str | SqlDatabase, *, schema: str | None = None) -> SqlCostLedger:
        """Open the ledger at a URL (or on a database); its schema must be current.

        Raises:
            StoreError: PostgreSQL's schema is behind (run `onionskin db migrate`).
        """
        database = SqlDatabase(target, schema=schema) if isinstance(target, str) else target
        try:
            await ensure_schema(database, "ledger", LEDGER_MIGRATIONS)
        except BaseException:
            if isinstance(target, str):
                await database.aclose()
            raise
        return cls(database, owns_database=isinstance(target, str))

    async def record(self, entry: CostEntry) -> RecordOutcome:
        """Append `entry` unless its call id is already there (a different one: StoreError)."""
        if not isinstance(entry, CostEntry):
            raise ConfigError(f"record() takes a CostEntry, got {entry!r}")
        return (await self.record_many([entry]))[0]

    async def record_many(self, entries: Sequence[CostEntry]) -> list[RecordOutcome]:
        """Record a batch of one tenant's entries in one transaction: all of them or none."""
        batch = unique_entries(entries)
        if not batch:
            return []
        tenant = batch[0].tenant_id or ""

        def record(db: Statements) -> tuple[dict[str, CostEntry], set[str], dict[str, int]]:
            # Rows (and period totals) are locked in one order by every writer: two batches
            # that share call ids wait for each other instead of deadlocking on PostgreSQL.
            inserted = self._insert(db, tenant, sorted(batch, key=_call_id))
            totals: dict[str, int] = {}
            for period in sorted({e.period for e in batch if e.call_id in inserted}):
                fresh = [e for e in batch if e.call_id in inserted and e.period == period]
                added = {
                    "tenant": tenant,
                    "period": period,
                    "micros": sum(e.cost_micros for e in fresh),
                    "calls": len(fresh),
                }
                totals[period] = int(db.execute(_ADD, added).scalar_one())
            held = {e.call_id: e for e in batch if e.call_id in inserted}
            repeated = [e for e in batch if e.call_id not in inserted]
            if repeated:
                held.update(self._check_repeated(db, tenant, repeated))
            for period in {e.period for e in entries} - totals.keys():
                totals[period] = self._spent(db, tenant, period)
            return held, inserted, totals

        held, inserted, totals = await self.database.write(record, tenant_id=tenant)
        return outcomes(entries, held, inserted, totals)

    def _insert(self, db: Statements, tenant: str, batch: list[CostEntry]) -> set[str]:
        """Insert the batch's new calls in one statement; the call ids that were new."""
        rows = ", ".join(_ROW.format(n=n) for n in range(len(batch)))
        params: dict[str, Any] = {"tenant": tenant}
        for n, e in enumerate(batch):
            params.update(
                {
                    f"call_id{n}": e.call_id,
                    f"run_id{n}": e.run_id,
                    f"agent{n}": e.agent,
                    f"model{n}": e.model,
                    f"input_tokens{n}": e.input_tokens,
                    f"output_tokens{n}": e.output_tokens,
                    f"cost_micros{n}": e.cost_micros,
                    f"period{n}": e.period,
                    f"recorded_at{n}": self._time(e.recorded_at),
                }
            )
        # Only placeholders are formatted into the SQL; every value stays a bound parameter.
        insert = (
            f"INSERT INTO onionskin_cost_entries (tenant_id, {_COLUMNS}) VALUES {rows} "
            "ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING call_id"
        )
        return {str(call_id) for (call_id,) in db.execute(insert, params)}

    def _check_repeated(
        self, db: Statements, tenant: str, repeated: list[CostEntry]
    ) -> dict[str, CostEntry]:
        """The stored entries of calls already in the ledger; a different one is an error."""
        calls, params = placeholders("call", [e.call_id for e in repeated])
        rows = db.execute(_STORED.format(calls=calls), {"tenant": tenant, **params}).all()
        stored = {row[0]: self._entry(repeated[0].tenant_id, row) for row in rows}
        for entry in repeated:
            if not stored[entry.call_id].same_call(entry):
                raise conflict(entry)
        return stored

    async def spent(self, *, tenant_id: str | None, period: str) -> int:
        """The tenant's total for `period`, in micro-dollars."""
        check_query(tenant_id, period)
        tenant = tenant_id or ""
        return await self.database.read(
            lambda db: self._spent(db, tenant, period), tenant_id=tenant
        )

    async def totals(self, *, tenant_id: str | None, period: str) -> CostTotals:
        """The tenant's total, calls and breakdowns for `period`."""
        check_query(tenant_id, period)
        params = {"tenant": tenant_id or "", "period": period}
        rows = await self.database.read(
            lambda db: db.execute(_GROUPS, params).all(), tenant_id=tenant_id or ""
        )
        groups = [(agent, model, int(micros), int(calls)) for agent, model, micros, calls in rows]
        return build_totals(tenant_id, period, groups)

    async def entries(
        self, *, tenant_id: str | None, period: str, limit: int = 100
    ) -> list[CostEntry]:
        """The tenant's entries of `period`, newest first, at most `limit`."""
        check_query(tenant_id, period)
        check_limit(limit)
        params = {"tenant": tenant_id or "", "period": period, "limit": limit}
        rows = await self.database.read(
            lambda db: db.execute(_ENTRIES, params).all(), tenant_id=tenant_id or ""
        )
        return [self._entry(tenant_id, row) for row in rows]

    async def claim_alert(self, *, tenant_id: str | None, threshold_pct: int, period: str) -> bool:
        """True exactly once per tenant, threshold and period, across every worker."""
        check_query(tenant_id, period)
        check_threshold(threshold_pct)
        params = {
            "tenant": tenant_id or "",
            "period": period,
            "pct": threshold_pct,
            "now": self._time(datetime.now(UTC)),
        }
        return await self.database.write(
            lambda db: db.execute(_CLAIM, params).rowcount == 1, tenant_id=tenant_id or ""
        )

    async def aclose(self) -> None:
        """Close the database if the ledger opened it."""
        if self._owns_database:
            await self.database.aclose()

    @staticmethod
    def _spent(db: Statements, tenant: str, period: str) -> int:
        total = db.execute(_SPENT, {"tenant": tenant, "period": period}).scalar()
        return 0 if total is None else int(total)

    def _time(self, moment: datetime) -> datetime | str:
        # SQLite has no time type (and Python 3.12 deprecates its datetime adapter): a fixed
        # ISO format in UTC, which also sorts in time order.
        if self.database.dialect == "sqlite":
            return moment.astimezone(UTC).isoformat(timespec="microseconds")
        return moment

    @staticmethod
    def _entry(tenant_id: str | None, row: tuple[Any, ...]) -> CostEntry:
        call_id, run_id, agent, model, tokens_in, tokens_out, micros, period, moment = row
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return CostEntry(
            call_id=call_id,
            tenant_id=tenant_id,
            run_id=run_id,
            agent=agent,
            model=model,
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cost_micros=int(micros),
            period=period,
            recorded_at=moment,
        )


def _call_id(entry: CostEntry) -> str:
    return entry.call_id


async def open_cost_ledger(url: str) -> CostLedger:
    """Open the ledger a URL names: `memory://`, `sqlite:///path.db` or `postgresql://...`."""
    if url == "memory://":
        return MemoryCostLedger()
    return await SqlCostLedger.open(url)
