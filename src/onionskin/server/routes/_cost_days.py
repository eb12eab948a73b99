"""A tenant's spend per UTC day of a month: the dashboard's `by_day`.

`CostLedger.totals()` breaks a month down by agent and model, not by day. On the SQL
ledger (what the server runs on) the days are one grouped query over the ledger's entries,
in a transaction bound to the tenant like the ledger's own reads (row-level security on
PostgreSQL) and naming the tenant in its WHERE clause. Any other ledger is read through
`entries()`, whose page holds the newest `MAX_LIMIT` calls: a month with more calls than
that shows only their days, and a warning is logged.
"""

from __future__ import annotations

import logging

from onionskin.stores.ledger import MAX_LIMIT, CostLedger
from onionskin.stores.sql_ledger import SqlCostLedger

logger = logging.getLogger("onionskin.server")

# recorded_at is ISO 8601 text in UTC on SQLite (its first ten characters are the day) and
# a TIMESTAMPTZ on PostgreSQL.
_DAY = {
    "sqlite": "substr(recorded_at, 1, 10)",
    "postgresql": "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_BY_DAY = (
    "SELECT {day} AS day, SUM(cost_micros) FROM onionskin_cost_entries "
    "WHERE tenant_id = :tenant AND period = :period GROUP BY day ORDER BY day"
)


async def daily_micros(ledger: CostLedger, *, tenant_id: str, period: str) -> dict[str, int]:
    """Micro-dollars spent by `tenant_id` on each UTC day (`"2026-11-05"`) of `period`."""
    if isinstance(ledger, SqlCostLedger):
        database = ledger.database
        query = _BY_DAY.format(day=_DAY[database.dialect])
        params = {"tenant": tenant_id, "period": period}
        rows = await database.read(lambda db: db.execute(query, params).all(), tenant_id=tenant_id)
        return {str(day): int(micros) for day, micros in rows}
    entries = await ledger.entries(tenant_id=tenant_id, period=period, limit=MAX_LIMIT)
    if len(entries) == MAX_LIMIT:
        logger.warning(
            "costs by day of tenant %r for %s: only the newest %d calls are counted (this "
            "ledger has no daily totals)",
            tenant_id,
            period,
            MAX_LIMIT,
        )
    days: dict[str, int] = {}
    for entry in entries:
        day = f"{entry.recorded_at:%Y-%m-%d}"  # recorded_at is kept in UTC
        days[day] = days.get(day, 0) + entry.cost_micros
    return dict(sorted(days.items()))
