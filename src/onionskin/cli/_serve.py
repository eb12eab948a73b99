"""`onionskin serve DIR`: the project's pipelines as an HTTP API, under uvicorn.

Authentication comes from the environment (`ONIONSKIN_JWT_SECRET`, `ONIONSKIN_JWT_JWKS_URL`,
`ONIONSKIN_API_KEYS` ..., see `onionskin.server.settings`); without any, the command refuses
to start unless `--insecure-local` asks for anonymous access on this machine only.
Checkpoints and costs go to the project's database (`--db`, as for `onionskin run`).

With `--workers N` (N > 1) uvicorn starts N processes, each importing `worker_app`; the
project folder, database and mode reach them through `ONIONSKIN_SERVE_*` variables, since a
worker process is started from an import string, not handed objects.

With several workers, each listens on a socket of its own (`SO_REUSEPORT`) and the kernel
spreads connections over them (`onionskin.cli._workers`): uvicorn's one shared socket let
the worker that woke first take every keep-alive connection waiting. Where sockets cannot
share a port, uvicorn's own supervisor runs the workers.

uvicorn's access log is off unless `--access-log` asks for it: formatting and writing its
line costs about 11 µs of CPU per request.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from onionskin.cli._errors import CommandError, clear_errors
from onionskin.cli._logs import warnings_as_lines
from onionskin.cli._options import ProjectDbOption
from onionskin.cli._project_stack import database_for, open_project
from onionskin.cli._run import ProjectArgument
from onionskin.cli._workers import WorkerPool, reuse_port_available

if TYPE_CHECKING:
    from fastapi import FastAPI

    from onionskin.server import ServerSettings

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
PROJECT_VARIABLE = "ONIONSKIN_SERVE_PROJECT"
DATABASE_VARIABLE = "ONIONSKIN_SERVE_DATABASE_URL"
INSECURE_VARIABLE = "ONIONSKIN_SERVE_INSECURE_LOCAL"
WORKER_APP = "onionskin.cli._serve:worker_app"
"""What each `--workers` process imports (and calls) to build its app."""

HostOption = Annotated[str, typer.Option("--host", help="The address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="The port to listen on.")]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, max=256, help="Worker processes (uvicorn's).")
]
AccessLogOption = Annotated[
    bool,
    typer.Option(
        "--access-log/--no-access-log",
        help=(
            "Log a line per request (uvicorn's access log). Off by default: a proxy or load "
            "balancer usually logs requests already, and the line costs CPU on every one."
        ),
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure-local",
        help=(
            "Serve without credentials, the tenant taken from X-Org-ID or the URL path: for "
            "local tries only, and only on a loopback --host."
        ),
    ),
]


def _settings(insecure_local: bool) -> ServerSettings:
    from onionskin.server import ServerSettings  # imported here: the server extra is optional

    settings = ServerSettings.from_env(anonymous=insecure_local)
    settings.check_servable()
    return settings


def _app(project: str, db: str | None, insecure_local: bool) -> tuple[FastAPI, str]:
    """The app serving `project`, and its database URL (checked before anything listens)."""
    from onionskin.server import create_app

    settings = _settings(insecure_local)
    loaded = open_project(project)
    url = database_for(loaded, db)
    return create_app(loaded, settings, database_url=url, settle_heap_on_start=True), url


def worker_app() -> FastAPI:
    """The app of one `--workers` process, from the `ONIONSKIN_SERVE_*` variables."""
    project = os.environ.get(PROJECT_VARIABLE)
    if not project:
        raise CommandError(f"{PROJECT_VARIABLE} is not set: start workers with `onionskin serve`")
    insecure = os.environ.get(INSECURE_VARIABLE) == "1"
    app, _ = _app(project, os.environ.get(DATABASE_VARIABLE) or None, insecure)
    return app


def serve(
    project: ProjectArgument,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
    db: ProjectDbOption = None,
    insecure_local: InsecureOption = False,
    access_log: AccessLogOption = False,
) -> None:
    """Serve the project's pipelines over HTTP: JSON answers or Server-Sent Events.

    POST /api/v1/pipelines/NAME/execute runs pipeline or agent NAME for the caller's
    organization; the OpenAPI document is at /openapi.json. Requests are not logged one by
    one unless --access-log asks for it.
    """
    with clear_errors():
        if insecure_local and host not in _LOOPBACK:
            raise CommandError(
                f"--insecure-local serves without credentials, so only on this machine: use "
                f"--host 127.0.0.1 (got --host {host})"
            )
        try:
            import uvicorn
        except ImportError as error:
            raise ImportError(
                'onionskin serve needs the server extra: pip install "onionskin[server]"'
            ) from error
        with warnings_as_lines():
            app, url = _app(str(project), db, insecure_local)  # fails here, before listening
        if workers == 1:
            uvicorn.run(app, host=host, port=port, access_log=access_log)
            return
        # Checked above in this process; each worker builds its own app from these.
        os.environ[PROJECT_VARIABLE] = str(project.resolve())
        os.environ[DATABASE_VARIABLE] = url
        os.environ[INSECURE_VARIABLE] = "1" if insecure_local else "0"
        config = uvicorn.Config(
            WORKER_APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
        )
        if not reuse_port_available():  # pragma: no cover - Linux and macOS have it
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[config.bind_socket()]).run()  # as uvicorn.run does
            return
        code = WorkerPool(config, workers).run()
        if code:
            raise typer.Exit(code)
