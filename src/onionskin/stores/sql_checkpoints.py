"""Checkpoints in SQL: the embedded SQLite default, or PostgreSQL for many workers.

Every statement runs in a transaction of the checkpoint's tenant (`""` for runs without a
tenant) *and* filters by `tenant_id` itself: on PostgreSQL row-level security is a second
wall behind the WHERE clause; SQLite has only the first. Payloads are stored as the JSON
text the codec made: TEXT on SQLite, JSON (not JSONB) on PostgreSQL, which keeps the text
as written, so key order and every string (even one holding an escaped NUL) come back unchanged.

Over 200 lines: the schema, the statements and the store that runs them are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from onionskin.core.errors import ConfigError
from onionskin.stores import _checkpoint_codec as codec
from onionskin.stores._migrations import Migration, ensure_schema, tenant_table_policy
from onionskin.stores._rows import Statements
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.checkpoints import (
    Checkpoint,
    CheckpointStore,
    MemoryCheckpointStore,
    RunSummary,
)

_TABLE = """
CREATE TABLE onionskin_checkpoints (
    checkpoint_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    parent_id TEXT,
    pipeline_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT,
    status TEXT NOT NULL,
    state {json} NOT NULL,
    messages {json} NOT NULL,
    data {json} NOT NULL,
    created_at {time} NOT NULL
)"""
_INDEX = "CREATE INDEX onionskin_checkpoints_run ON onionskin_checkpoints (tenant_id, run_id, step)"

CHECKPOINT_MIGRATIONS = (
    Migration(
        version=1,
        name="onionskin_checkpoints",
        sqlite=[_TABLE.format(json="TEXT", time="TEXT"), _INDEX],
        postgresql=[
            _TABLE.format(json="JSON", time="TIMESTAMPTZ"),
            _INDEX,
            *tenant_table_policy("onionskin_checkpoints"),
        ],
    ),
)
"""The checkpoint store's schema steps (component `"checkpoints"`)."""

_PLAIN_COLUMNS = (
    "checkpoint_id", "run_id", "parent_id", "pipeline_id", "step", "kind", "agent", "status"
)  # fmt: skip
"""The columns that hold a checkpoint's field as it is; the others are encoded."""
_COLUMNS = ", ".join((*_PLAIN_COLUMNS, "tenant_id", "state", "messages", "data", "created_at"))
_INSERT = (
    f"INSERT INTO onionskin_checkpoints ({_COLUMNS}) VALUES "
    f"({', '.join(':' + name for name in _COLUMNS.split(', '))}) "
    "ON CONFLICT (checkpoint_id) DO NOTHING"
)
# CAST(... AS TEXT): PostgreSQL's driver would parse JSON columns itself; we want the text.
_SELECT = (
    f"SELECT {', '.join(_PLAIN_COLUMNS)}, tenant_id, CAST(state AS TEXT) AS state, "
    "CAST(messages AS TEXT) AS messages, CAST(data AS TEXT) AS data, created_at "
    "FROM onionskin_checkpoints WHERE tenant_id = :tenant"
)
_BY_ID = _SELECT + " AND checkpoint_id = :checkpoint_id"
_BY_RUN = _SELECT + " AND run_id = :run_id ORDER BY step, checkpoint_id"
_LATEST = _SELECT + " AND run_id = :run_id ORDER BY step DESC, checkpoint_id DESC LIMIT 1"
_DELETE = "DELETE FROM onionskin_checkpoints WHERE tenant_id = :tenant AND run_id = :run_id"
_RUNS = (
    "SELECT run_id, pipeline_id, step, status, n, started_at, updated_at FROM ("
    "SELECT run_id, pipeline_id, step, status, "
    "ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY step DESC, checkpoint_id DESC) AS position, "
    "COUNT(*) OVER (PARTITION BY run_id) AS n, "
    "MIN(created_at) OVER (PARTITION BY run_id) AS started_at, "
    "MAX(created_at) OVER (PARTITION BY run_id) AS updated_at "
    "FROM onionskin_checkpoints WHERE tenant_id = :tenant) AS runs "
    "WHERE position = 1 ORDER BY started_at DESC, run_id DESC LIMIT :limit"
)


class SqlCheckpointStore:
    """Checkpoints in a SQLite file or a PostgreSQL database; open with `open()`.

    Args:
        database: where the table lives; its schema must be current (`open()` sees to it).
        owns_database: close `database` in `aclose()`.
    """

    def __init__(self, database: SqlDatabase, *, owns_database: bool = False) -> None:
        self.database = database
        self._owns_database = owns_database

    @classmethod
    async def open(
        cls, url_or_database: str | SqlDatabase, *, schema: str | None = None
    ) -> SqlCheckpointStore:
        """Open the store on a URL (its database is closed with the store) or a database.

        SQLite creates or migrates the table; PostgreSQL refuses a schema that is behind,
        naming `onionskin db migrate`. `schema` (PostgreSQL, URL only) keeps the table there.
        """
        owns = isinstance(url_or_database, str)
        if isinstance(url_or_database, str):
            database = SqlDatabase(url_or_database, schema=schema)
        elif schema is not None:
            raise ConfigError("schema= applies to a URL; set it on the SqlDatabase instead")
        else:
            database = url_or_database
        try:
            await ensure_schema(database, "checkpoints", CHECKPOINT_MIGRATIONS)
        except BaseException:
            if owns:
                await database.aclose()
            raise
        return cls(database, owns_database=owns)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a new checkpoint; an id that already exists is a `StoreError`."""
        encoded = codec.encode_checkpoint(checkpoint)
        stored_time: object = encoded.created_at
        if self.database.dialect == "sqlite":
            # Fixed-width ISO text in UTC sorts in time order, which MIN/MAX/ORDER BY rely on.
            stored_time = encoded.created_at.isoformat(timespec="microseconds")
        values = {name: getattr(checkpoint, name) for name in _PLAIN_COLUMNS}
        values.update(
            tenant_id=encoded.tenant_key,
            state=encoded.state,
            messages=encoded.messages,
            data=encoded.data,
            created_at=stored_time,
        )

        def insert(db: Statements) -> None:
            # DO NOTHING rather than a unique-violation error: the driver's message would
            # describe the existing row, and it may be another tenant's.
            if db.execute(_INSERT, values).rowcount == 0:
                raise codec.duplicate_error(checkpoint.checkpoint_id)

        await self.database.write(insert, tenant_id=encoded.tenant_key)

    async def get_checkpoint(
        self, checkpoint_id: str, *, tenant_id: str | None
    ) -> Checkpoint | None:
        """The checkpoint with this id in this tenant's partition, or None."""
        codec.check_id("checkpoint_id", checkpoint_id)
        rows = await self._read(_BY_ID, tenant_id, checkpoint_id=checkpoint_id)
        return _checkpoint(rows[0]) if rows else None

    async def get_checkpoints(self, run_id: str, *, tenant_id: str | None) -> list[Checkpoint]:
        """The run's checkpoints in this tenant's partition, in step order."""
        codec.check_id("run_id", run_id)
        return [_checkpoint(row) for row in await self._read(_BY_RUN, tenant_id, run_id=run_id)]

    async def latest_checkpoint(self, run_id: str, *, tenant_id: str | None) -> Checkpoint | None:
        """The run's checkpoint with the highest step, or None."""
        codec.check_id("run_id", run_id)
        rows = await self._read(_LATEST, tenant_id, run_id=run_id)
        return _checkpoint(rows[0]) if rows else None

    async def delete_checkpoints(self, run_id: str, *, tenant_id: str | None) -> int:
        """Delete the run's checkpoints in this tenant's partition; how many there were."""
        codec.check_id("run_id", run_id)
        tenant = codec.tenant_key(tenant_id)
        params = {"tenant": tenant, "run_id": run_id}
        return await self.database.write(
            lambda db: int(db.execute(_DELETE, params).rowcount), tenant_id=tenant
        )

    async def list_runs(self, *, tenant_id: str | None, limit: int = 100) -> list[RunSummary]:
        """This tenant's runs, the most recently started first, at most `limit` (1..1000)."""
        codec.check_limit(limit)
        return [
            RunSummary(
                run_id=row["run_id"],
                tenant_id=tenant_id,
                pipeline_id=row["pipeline_id"],
                checkpoints=int(row["n"]),
                last_step=int(row["step"]),
                status=row["status"],
                started_at=_time(row["started_at"]),
                updated_at=_time(row["updated_at"]),
            )
            for row in await self._read(_RUNS, tenant_id, limit=limit)
        ]

    async def aclose(self) -> None:
        """Close the database if the store opened it."""
        if self._owns_database:
            await self.database.aclose()

    async def _read(
        self, statement: str, tenant_id: str | None, **values: object
    ) -> list[dict[str, Any]]:
        tenant = codec.tenant_key(tenant_id)
        params = {"tenant": tenant, **values}
        return await self.database.read(
            lambda db: db.execute(statement, params).mappings(), tenant_id=tenant
        )


def _checkpoint(row: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        **{name: row[name] for name in _PLAIN_COLUMNS},
        tenant_id=row["tenant_id"] or None,
        state=codec.decode_json(row["state"]),
        messages=codec.decode_json(row["messages"]),
        data=codec.decode_json(row["data"]),
        created_at=_time(row["created_at"]),
    )


def _time(value: str | datetime) -> datetime:
    # SQLite gives back the ISO text we wrote; PostgreSQL a datetime in the session's zone.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


async def open_checkpoint_store(url: str | None, *, schema: str | None = None) -> CheckpointStore:
    """The checkpoint store a URL names: `memory://` (or None), `sqlite:///…`, `postgresql://…`.

    `schema` (PostgreSQL only) keeps the table in that schema.
    """
    if url is None or url == "memory://":
        return MemoryCheckpointStore()
    return await SqlCheckpointStore.open(url, schema=schema)
