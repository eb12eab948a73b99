"""The one place that builds a project's orchestrator for the CLI, and opens its database.

`run`, `replay` and `explain` all build the same stack, outermost first:
`TenantMiddleware` (the run's tenant from `--tenant`, none required), `CheckpointMiddleware`
and `CostMiddleware` on the project's database, then what the project itself adds (each
agent's `middleware:`, the `middleware/<agent>.py` files, plugins) and message capture.
The tenant comes first so that checkpoints and costs are filed under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from onionskin.cli._errors import CommandError
from onionskin.cli._options import tenant_id
from onionskin.cli._project_db import project_database_url, project_dir
from onionskin.core.errors import TenantError
from onionskin.core.tenant import TenantContext
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.middleware.cost import CostMiddleware
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.project import Project, load_project
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.checkpoints import CheckpointStore
from onionskin.stores.ledger import CostLedger
from onionskin.stores.sql_checkpoints import SqlCheckpointStore
from onionskin.stores.sql_ledger import SqlCostLedger


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectStores:
    """The stores a project's runs write to, on one database."""

    checkpoints: CheckpointStore
    ledger: CostLedger


def open_project(given: str | Path) -> Project:
    """Load the project folder `given` (a `ProjectError` naming the file when it is broken)."""
    return load_project(project_dir(given))


def check_name(project: Project, name: str) -> str:
    """`name` if it is a pipeline or agent of `project` (before any database is opened).

    Raises:
        UnknownAgentError: listing the names the project has.
    """
    project.pipeline(name)
    return name


def database_for(project: Project, given: str | None) -> str:
    """The project's database URL: `--db`, `onionskin.yaml`, the environment, or its folder."""
    return project_database_url(project.path, project.settings, given)


def tenant_context(tenant: str | None, user: str | None) -> TenantContext | None:
    """The run's tenant from `--tenant` and `--user` (checked: a `TenantError` naming the option).

    Raises:
        CommandError: `--user` without `--tenant` (a user belongs to a tenant).
    """
    scope = tenant_id(tenant)
    if scope is None:
        if user is not None:
            raise CommandError("--user needs --tenant: a user belongs to a tenant")
        return None
    try:
        return TenantContext(tenant_id=scope, user_id=user)
    except TenantError as error:
        # The rule's own words, naming the option the user typed rather than the field.
        raise TenantError(str(error).replace("TenantContext.user_id", "--user")) from None


def build_orchestrator(project: Project, name: str, stores: ProjectStores) -> Orchestrator:
    """The orchestrator `onionskin run` uses for pipeline or agent `name` of `project`."""
    core = [
        TenantMiddleware(required=False),
        CheckpointMiddleware(stores.checkpoints),
        CostMiddleware(stores.ledger),
    ]
    return project.orchestrator(name, middleware=core)


@asynccontextmanager
async def project_stores(url: str) -> AsyncIterator[ProjectStores]:
    """The checkpoint store and cost ledger at `url` (SQLite files are created as needed)."""
    database = SqlDatabase(url)
    try:
        checkpoints = await SqlCheckpointStore.open(database)
        ledger = await SqlCostLedger.open(database)
        yield ProjectStores(checkpoints=checkpoints, ledger=ledger)
    finally:
        await database.aclose()
