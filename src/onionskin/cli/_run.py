"""`onionskin run DIR --agent NAME "MESSAGE"`: one run of a project, with live progress.

The run goes through the stack `_project_stack` builds (tenant, checkpoints and costs on
the project's database, then the project's own middleware and plugins), is streamed with
`orchestrator.run(...)`, and ends with the answer, the run id, tokens, cost and duration,
or with `--json` one JSON object for scripts.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from onionskin.cli._errors import CommandError, clear_errors
from onionskin.cli._logs import warnings_as_lines
from onionskin.cli._options import JsonOption, ProjectDbOption
from onionskin.cli._project_stack import (
    build_orchestrator,
    check_name,
    database_for,
    open_project,
    project_stores,
    tenant_context,
)
from onionskin.cli._watch import RunFailure, RunWatch, new_watch, report, watched
from onionskin.core.events import RunCompleted
from onionskin.core.tenant import TenantContext
from onionskin.core.usage import Usage
from onionskin.project import Project
from onionskin.runtime._result import RunResult

ProjectArgument = Annotated[
    Path, typer.Argument(metavar="DIR", help="The project folder (agents/, tools/, middleware/).")
]
AgentOption = Annotated[
    str,
    typer.Option(
        "--agent",
        metavar="NAME",
        help="The agent to run (agents/NAME.yaml), or a pipeline (pipelines/NAME.yaml).",
    ),
]
RunTenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help="The tenant the run belongs to: its checkpoints and costs are filed under it.",
        show_default=False,
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user", metavar="USER", help="Who started the run (needs --tenant).", show_default=False
    ),
]


def resume_hint(project: Path, context: TenantContext | None, run_id: str) -> str:
    """The command that continues the failed run `run_id` of `project`."""
    tenant = "" if context is None else f" --tenant {context.tenant_id}"
    return f"continue it with: onionskin replay {run_id} --project {project}{tenant}"


def run(
    project: ProjectArgument,
    message: Annotated[str, typer.Argument(metavar="MESSAGE", help="What to ask.")],
    agent: AgentOption,
    tenant: RunTenantOption = None,
    user: UserOption = None,
    db: ProjectDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an agent or pipeline of a project on MESSAGE, showing its progress live.

    Checkpoints and costs go to the project's database (see --db), so `onionskin runs
    --project DIR` lists the run and `onionskin replay` can start again from any step.
    """
    with clear_errors(), warnings_as_lines():
        context = tenant_context(tenant, user)
        loaded = open_project(project)
        name = check_name(loaded, agent)
        url = database_for(loaded, db)
        outcome = asyncio.run(_run(loaded, name, url, message, context, new_watch(as_json)))
    report(outcome, as_json=as_json, hint=partial(resume_hint, project, context))


async def _run(
    project: Project,
    name: str,
    url: str,
    message: str,
    context: TenantContext | None,
    watch: RunWatch,
) -> RunResult | RunFailure:
    async with project_stores(url) as stores:
        orchestrator = build_orchestrator(project, name, stores)

        async def stream(watch: RunWatch) -> RunResult:
            completed: RunCompleted | None = None
            async for event in orchestrator.run(message, context=context):
                watch(event)
                if isinstance(event, RunCompleted):
                    completed = event
            if completed is None or watch.pipeline_id is None:  # pragma: no cover - a bug
                raise CommandError("the run ended without a RunCompleted event")
            return _result(completed, watch.pipeline_id)

        return await watched(watch, stream)


def _result(event: RunCompleted, pipeline_id: str) -> RunResult:
    """The result a `RunCompleted` event describes (the stream's last event)."""
    return RunResult(
        run_id=event.run_id,
        pipeline_id=pipeline_id,
        tenant_id=event.tenant_id,
        output=event.output,
        stopped=event.stopped,
        usage=Usage(input_tokens=event.input_tokens, output_tokens=event.output_tokens),
        cost_usd=event.cost_usd,
        duration_ms=event.duration_ms,
    )
