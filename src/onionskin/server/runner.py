"""`PipelineRunner`: the one place the server builds a project's orchestrators and runs them.

Every pipeline runs through the same stack, outermost first: `TenantMiddleware` (a run
without a tenant is refused), `TenantConfigMiddleware` (each tenant's config and limits from
the tenant-config table, when the server has one), `CheckpointMiddleware` and
`CostMiddleware` on the server's database (a tenant past its monthly budget waits in the
approval queue), then what the project adds (each agent's `middleware:`, `middleware/<agent>.py`
files, plugins) and message capture. An orchestrator is built once per pipeline and shared
by every request: the middleware keep per-run state in the run's context, never on
themselves, so concurrent runs of different tenants do not meet.

Each run gets the request's tenant as its `TenantContext` and the request's metadata
(tenant, user, role, request id, and the client's own keys) bound with
`request_metadata_scope`, so every middleware reads it with `current_request_metadata()`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable
from typing import cast

from onionskin.core.context import request_metadata_scope
from onionskin.core.errors import ConfigError
from onionskin.core.events import EventSink, RunEvent
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.middleware.cost import CostMiddleware
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.middleware.tenant_config import TenantConfigMiddleware
from onionskin.project import Project, UnknownAgentError
from onionskin.runtime._result import RunResult
from onionskin.runtime.agent import check_agent_name
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.server.schemas import ExecuteRequest
from onionskin.server.tenancy import RequestTenant
from onionskin.stores.approvals import ApprovalQueue
from onionskin.stores.checkpoints import CheckpointStore
from onionskin.stores.ledger import CostLedger
from onionskin.tenancy.config import ConfigProvider

logger = logging.getLogger("onionskin.server")


class PipelineRunner:
    """Runs a project's pipelines for HTTP requests, on one checkpoint store and ledger.

    Args:
        project: the loaded project.
        checkpoints: where every run's checkpoints go.
        ledger: where every model call's cost goes.
        approvals: where calls over a tenant's monthly budget wait for an operator; None
            refuses them with `BudgetExceededError`.
        tenant_configs: each tenant's config (model, settings, limits); None: none.
        event_sinks: called with every event of every run (a dashboard, say); one that
            raises is logged and the run goes on.
    """

    def __init__(
        self,
        project: Project,
        *,
        checkpoints: CheckpointStore,
        ledger: CostLedger,
        approvals: ApprovalQueue | None = None,
        tenant_configs: ConfigProvider | None = None,
        event_sinks: Iterable[EventSink] = (),
    ) -> None:
        self.project = project
        self.checkpoints = checkpoints
        self.ledger = ledger
        self.approvals = approvals
        self.tenant_configs = tenant_configs
        self._sinks = tuple(event_sinks)
        self._orchestrators: dict[str, Orchestrator] = {}

    def orchestrator(self, name: str) -> Orchestrator:
        """The orchestrator of pipeline (or agent) `name`, built on first use.

        Raises:
            UnknownAgentError: `name` is not a pipeline or agent of the project, or not a
                valid name at all (a path trick is simply not found).
        """
        found = self._orchestrators.get(name)
        if found is not None:
            return found
        try:
            check_agent_name(name)
        except ConfigError:
            raise UnknownAgentError(name, ()) from None
        self.project.pipeline(name)  # UnknownAgentError before any middleware is built
        core: list[object] = [TenantMiddleware(required=True)]
        if self.tenant_configs is not None:
            core.append(TenantConfigMiddleware([self.tenant_configs]))
        core += [
            CheckpointMiddleware(self.checkpoints),
            CostMiddleware(self.ledger, approvals=self.approvals),
        ]
        built = self._orchestrators[name] = self.project.orchestrator(name, middleware=core)
        return built

    def emit(self, event: RunEvent) -> None:
        """Hand `event` to every event sink."""
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                logger.exception("an event sink (%r) raised; the run goes on", sink)

    async def execute(self, name: str, body: ExecuteRequest, tenant: RequestTenant) -> RunResult:
        """Run `name` to completion for `tenant`; a failed run raises its exception."""
        orchestrator = self.orchestrator(name)
        with request_metadata_scope(tenant.metadata(body.metadata)):
            return await orchestrator.execute(
                body.input,
                context=tenant.context,
                state=body.state,
                on_event=self.emit if self._sinks else None,
            )

    def events(
        self, name: str, body: ExecuteRequest, tenant: RequestTenant
    ) -> AsyncGenerator[RunEvent, None]:
        """Run `name` for `tenant`, yielding its events; closing the iterator cancels it.

        Raises:
            UnknownAgentError: at once, before anything runs.
        """
        events = self.orchestrator(name).run(
            body.input,
            context=tenant.context,
            state=body.state,
            metadata=tenant.metadata(body.metadata),
        )
        # cast: run() is an async generator function (annotated as an AsyncIterator), and
        # the stream must aclose() it to cancel the run when the client goes away.
        return cast(AsyncGenerator[RunEvent, None], events)
