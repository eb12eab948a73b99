"""Every SQL store's migrations in one place, the `onionskin db` commands' engine.

SQLite stores migrate themselves when they open; PostgreSQL is migrated as a deploy step
(`onionskin db migrate postgresql://...`) by a role that may create tables, policies and
the tenant role, so that the application's own role never needs those rights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import text

from onionskin.stores._migrations import Migration, migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_approvals import APPROVAL_MIGRATIONS
from onionskin.stores.sql_checkpoints import CHECKPOINT_MIGRATIONS
from onionskin.stores.sql_ledger import LEDGER_MIGRATIONS
from onionskin.stores.sql_tenant_config import TENANT_CONFIG_COMPONENT, TENANT_CONFIG_MIGRATIONS

COMPONENTS: Mapping[str, Sequence[Migration]] = {
    "checkpoints": CHECKPOINT_MIGRATIONS,
    "ledger": LEDGER_MIGRATIONS,
    "approvals": APPROVAL_MIGRATIONS,
    TENANT_CONFIG_COMPONENT: TENANT_CONFIG_MIGRATIONS,
}
"""Each SQL store component and its ordered migrations."""


def default_database_url(project_dir: Path | None = None) -> str:
    """The store URL from `ONIONSKIN_DATABASE_URL`, else a SQLite file in the project.

    The embedded default lives at `<project>/.onionskin/onionskin.db` (the current
    directory unless `project_dir` is given), so a project needs no service at all.
    """
    configured = os.environ.get("ONIONSKIN_DATABASE_URL")
    if configured:
        return configured
    base = (project_dir or Path.cwd()) / ".onionskin" / "onionskin.db"
    return f"sqlite:///{base}"


async def migrate_all(url: str, *, schema: str | None = None) -> dict[str, list[int]]:
    """Apply every component's pending migrations at `url`; return what ran, by component."""
    database = SqlDatabase(url, schema=schema)
    try:
        return {
            component: await migrate(database, component, migrations)
            for component, migrations in COMPONENTS.items()
        }
    finally:
        await database.aclose()


async def _applied_counts(database: SqlDatabase) -> dict[str, int]:
    probe = (
        "SELECT to_regclass('onionskin_schema_migrations') IS NOT NULL"
        if database.dialect == "postgresql"
        else "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'onionskin_schema_migrations'"
    )
    async with database.transaction() as connection:
        if not (await connection.execute(text(probe))).scalar_one():
            return {}
        rows = await connection.execute(
            text("SELECT component, count(*) FROM onionskin_schema_migrations GROUP BY component")
        )
        return {str(component): int(count) for component, count in rows}


async def schema_status(url: str, *, schema: str | None = None) -> dict[str, tuple[int, int]]:
    """`(applied, known)` migration counts per component at `url`."""
    database = SqlDatabase(url, schema=schema)
    try:
        applied = await _applied_counts(database)
    finally:
        await database.aclose()
    return {
        component: (applied.get(component, 0), len(migrations))
        for component, migrations in COMPONENTS.items()
    }
