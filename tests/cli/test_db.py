"""`onionskin db migrate` / `db status`: schema management for the SQL stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onionskin.cli import app
from onionskin.core.errors import StoreError
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.schema import COMPONENTS, default_database_url, migrate_all, schema_status
from onionskin.stores.sql_checkpoints import SqlCheckpointStore

runner = CliRunner()


def test_status_reports_a_new_database_behind_and_migrate_brings_it_current(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/project.db"

    behind = runner.invoke(app, ["db", "status", url])
    assert behind.exit_code == 1
    assert "checkpoints: 0/1" in behind.output

    migrated = runner.invoke(app, ["db", "migrate", url])
    assert migrated.exit_code == 0, migrated.output
    assert "checkpoints: 1" in migrated.output

    again = runner.invoke(app, ["db", "migrate", url])
    assert "checkpoints: up to date" in again.output
    current = runner.invoke(app, ["db", "status", url])
    assert current.exit_code == 0
    for component, migrations in COMPONENTS.items():
        assert f"{component}: {len(migrations)}/{len(migrations)}" in current.output


def test_a_bad_url_is_one_clear_line_and_exit_2() -> None:
    result = runner.invoke(app, ["db", "migrate", "mysql://host/db"])
    assert result.exit_code == 2
    assert "unsupported database URL scheme 'mysql'" in result.output
    assert "Traceback" not in result.output


def test_the_default_url_is_a_sqlite_file_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONIONSKIN_DATABASE_URL", raising=False)
    assert default_database_url(tmp_path) == f"sqlite:///{tmp_path}/.onionskin/onionskin.db"
    monkeypatch.setenv("ONIONSKIN_DATABASE_URL", "postgresql://u@h/db")
    assert default_database_url(tmp_path) == "postgresql://u@h/db"


async def test_postgres_stores_open_only_after_the_migrate_command(
    database_factory: Callable[[str], SqlDatabase], postgres_url: str
) -> None:
    database = database_factory("postgres")
    assert database.schema is not None
    with pytest.raises(StoreError, match="onionskin db migrate"):
        await SqlCheckpointStore.open(database)
    assert await schema_status(postgres_url, schema=database.schema) == {
        component: (0, len(migrations)) for component, migrations in COMPONENTS.items()
    }

    ran = await migrate_all(postgres_url, schema=database.schema)

    assert ran == {component: [1] for component in COMPONENTS}
    store = await SqlCheckpointStore.open(database)
    assert await store.list_runs(tenant_id="acme") == []
