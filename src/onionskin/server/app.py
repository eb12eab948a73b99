"""`create_app`: a project's pipelines as an HTTP API, on the project's database.

```
RequestIdMiddleware        every request gets an id (X-Request-ID)
  BodyLimitMiddleware      bodies over the limit: 413, while reading
    FastAPI                problem+json errors; /api/v1 routes authenticate, then resolve
                           the tenant, then run through PipelineRunner or read the
                           tenant's runs, costs and approvals; /api/v1/ws/analytics streams
                           the tenant's live analytics
```

The stores (checkpoints, the cost ledger, the approval queue and tenant configs) are
opened when the app starts (its lifespan) and closed when it stops; SQLite files are
created and migrated as needed, PostgreSQL must be migrated first (`onionskin db migrate
URL`). Live analytics start with them: every run's events go to the WebSocket clients of
its tenant, through Redis to every worker's clients when `redis_url` is set (a Redis that
is down fails start-up).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from onionskin import __version__
from onionskin.core.events import EventSink
from onionskin.project import Project
from onionskin.project.database import project_database_url
from onionskin.server.auth import Authenticator
from onionskin.server.dashboard import mount_dashboard
from onionskin.server.errors import install_problem_handlers
from onionskin.server.heap import settle_heap
from onionskin.server.jwks import JwksClient
from onionskin.server.limits import BodyLimitMiddleware
from onionskin.server.openapi import problem_openapi
from onionskin.server.request_id import RequestIdMiddleware
from onionskin.server.routes import analytics_ws, approvals, costs, execute, runs
from onionskin.server.routes._live import LiveAnalytics
from onionskin.server.runner import PipelineRunner
from onionskin.server.settings import ServerSettings
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_approvals import SqlApprovalQueue
from onionskin.stores.sql_checkpoints import SqlCheckpointStore
from onionskin.stores.sql_ledger import SqlCostLedger
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider

_DESCRIPTION = (
    "Run the pipelines of an onionskin project for your organization. Authenticate with "
    "`Authorization: Bearer <JWT>` (claims `org_id`, `org_role`, `sub`) or an API key; "
    "every error is `application/problem+json`."
)


def create_app(
    project: Project,
    settings: ServerSettings,
    *,
    database_url: str | None = None,
    event_sinks: Iterable[EventSink] = (),
    jwks: JwksClient | None = None,
    settle_heap_on_start: bool = False,
) -> FastAPI:
    """The FastAPI application serving `project`'s pipelines.

    Args:
        project: the loaded project.
        settings: authentication and limits (`ServerSettings.from_env()`).
        database_url: where checkpoints and costs go; the project's `database_url` from
            `onionskin.yaml`, else `ONIONSKIN_DATABASE_URL`, else
            `<project>/.onionskin/onionskin.db` when None.
        event_sinks: called with every event of every run (besides live analytics).
        jwks: where RS256 / ES256 keys come from; built from `settings.jwt_jwks_url` if None.
        settle_heap_on_start: once started, tune the process's garbage collector for
            serving (`onionskin.server.heap`); for a process that is only this server.

    Raises:
        ConfigError: no way to authenticate and not `settings.anonymous`.
    """
    settings.check_servable()
    url = database_url or project_database_url(project.path, project.settings)
    authenticator = Authenticator(settings, jwks=jwks)
    sinks = tuple(event_sinks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = SqlDatabase(url)
        live: LiveAnalytics | None = None
        try:
            checkpoints = await SqlCheckpointStore.open(database)
            ledger = await SqlCostLedger.open(database)
            app.state.approvals = await SqlApprovalQueue.open(database)
            # No cache: a budget changed by an operator shows at the next read.
            app.state.tenant_configs = SqlTenantConfigProvider(database, ttl=0)
            live = app.state.live = await LiveAnalytics.start(settings, database_url=url)
            app.state.runner = PipelineRunner(
                project,
                checkpoints=checkpoints,
                ledger=ledger,
                approvals=app.state.approvals,
                tenant_configs=app.state.tenant_configs,
                event_sinks=(*sinks, live.sink),
            )
            if settle_heap_on_start:
                settle_heap()
            yield
        finally:
            if live is not None:
                await live.aclose()
            await database.aclose()
            if authenticator.jwks is not None:
                await authenticator.jwks.aclose()

    app = FastAPI(
        title=f"onionskin: {project.path.name}",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    install_problem_handlers(app)
    for routes in (execute, runs, costs, approvals, analytics_ws):
        app.include_router(routes.router)
    mount_dashboard(app)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    # Added last is outermost: the request id exists before a 413 is answered.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
