"""A real server on a free port and a headless Chromium (Debian's, never a downloaded one).

The server is `create_app` with the dashboard mounted, under uvicorn in a thread, on a tmp
project of scripted models: `research` (the `assistant` agent calls the `lookup` tool,
then `echo` answers) and the agent `echo` alone. Two tenants: `acme` (an API key, and a
monthly budget) and `globex` (an API key or a JWT).
"""

from __future__ import annotations

import asyncio
import os
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright

from onionskin import ModelRequest, ToolReturnPart
from onionskin.project import Project, load_project
from onionskin.runtime.models.resolve import ModelOptions
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem, tool_call
from onionskin.server import ApiKeyGrant, ServerSettings, create_app
from onionskin.server.dashboard import mount_dashboard
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider

ACME_KEY = "acme-dashboard-key-0123456789"
GLOBEX_KEY = "globex-dashboard-key-0123456789"
ACME_BUDGET = "5"
SECRET = "a-dashboard-test-secret-long-enough-for-hs256"
CHROMIUM = os.environ.get("ONIONSKIN_CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium; `playwright install` is never run."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PROJECT = {
    "agents/assistant.yaml": "model: tooling\ntools: [lookup]\n",
    "agents/echo.yaml": "model: echo\n",
    "pipelines/research.yaml": "agents: [assistant, echo]\n",
    "tools/lookup.py": '''
        def lookup(topic: str) -> str:
            """Look a topic up."""
            return f"facts about {topic}"
    ''',
}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Where screenshots go (git-ignored); CI keeps the folder as the run's artifacts."""


def _tooling(request: ModelRequest) -> ScriptItem:
    returned = [
        part.content
        for message in request.messages
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]
    if not returned:
        return tool_call("lookup", topic=request.messages[-1].text)
    return f"found: {returned[0]}"


def _echo(request: ModelRequest) -> ScriptItem:
    return f"echo: {request.messages[-1].text}"


def _resolve(spec: str, options: ModelOptions) -> ScriptedModel:
    script = {"tooling": _tooling, "echo": _echo}[spec]
    return ScriptedModel(script, name=spec, input_price_per_mtok="2", output_price_per_mtok="8")


@dataclass(frozen=True)
class LiveServer:
    """The running server's base URL (`http://127.0.0.1:PORT`)."""

    url: str


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("dashboard") / "project"
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_project(root, model_resolver=_resolve)


class _Server(uvicorn.Server):
    """uvicorn, telling the test thread when it listens (or gave up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    def serve_then_signal(self, listener: socket.socket) -> None:
        try:
            self.run(sockets=[listener])
        finally:
            self.ready.set()  # a failed start-up must not leave the test waiting


@contextmanager
def serving(project: Project, settings: ServerSettings, database: Path) -> Iterator[LiveServer]:
    """The app with the dashboard mounted, served by uvicorn in a thread on a free port."""
    app = create_app(project, settings, database_url=f"sqlite:///{database}")
    mount_dashboard(app)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # sansio: the legacy websockets implementation warns, and warnings are errors here.
    config = uvicorn.Config(
        app, log_level="warning", ws="websockets-sansio", timeout_graceful_shutdown=2
    )
    server = _Server(config)
    thread = threading.Thread(target=server.serve_then_signal, args=[listener], daemon=True)
    thread.start()
    try:
        if not server.ready.wait(timeout=20) or not server.started:
            pytest.fail("the dashboard's test server did not start")
        yield LiveServer(url=f"http://127.0.0.1:{listener.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


async def _set_budget(database: Path, tenant_id: str, usd: str) -> None:
    sql = SqlDatabase(f"sqlite:///{database}")
    try:
        configs = SqlTenantConfigProvider(sql)
        await configs.set_config(tenant_id, {"limits": {"monthly_budget_usd": usd}})
    finally:
        await sql.aclose()


@pytest.fixture(scope="module")
def live_server(project: Project) -> Iterator[LiveServer]:
    """API keys for acme and globex, JWTs signed with `SECRET`; acme has a budget of $5."""
    keys = {
        ACME_KEY: ApiKeyGrant(tenant_id="acme", role="admin"),
        GLOBEX_KEY: ApiKeyGrant(tenant_id="globex", role="member"),
    }
    database = project.path.parent / "server.db"
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_set_budget(database, "acme", ACME_BUDGET))).result()
    with serving(project, ServerSettings(api_keys=keys, jwt_secret=SECRET), database) as server:
        yield server


@pytest.fixture(scope="module")
def local_server(project: Project) -> Iterator[LiveServer]:
    """The same project served in insecure-local mode: no credentials, `?org_id=` names the org."""
    database = project.path.parent / "local.db"
    with serving(project, ServerSettings(anonymous=True), database) as server:
        yield server


def token(org_id: str) -> str:
    """A JWT for a member of `org_id`, valid for five minutes."""
    claims = {"org_id": org_id, "org_role": "member", "sub": "dana", "exp": int(time.time()) + 300}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _missing_browser(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing browser is a failure")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium from `CHROMIUM`; skips when it is missing, but fails under `CI=true`."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing_browser(f"Chromium is not installed at {CHROMIUM} (set ONIONSKIN_CHROMIUM)")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield launched
    finally:
        launched.close()
