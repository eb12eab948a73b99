"""Shared fixtures: factories for agents and orchestrators on scripted models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from onionskin import Agent, ModelRequest, Orchestrator
from onionskin.runtime.models.scripted import Script, ScriptedModel, ScriptItem

if TYPE_CHECKING:
    from onionskin.stores._sql import SqlDatabase

AgentFactory = Callable[..., Agent]
OrchestratorFactory = Callable[..., Orchestrator]


def recorder(
    answers: Sequence[ScriptItem], seen: list[ModelRequest]
) -> Callable[[ModelRequest], ScriptItem]:
    """A function script answering `answers` in order and recording every request."""
    remaining = list(answers)

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return remaining.pop(0)

    return script


@pytest.fixture
def agent_factory() -> AgentFactory:
    """Build an agent on a scripted model: `agent_factory(script, name=..., tools=...)`."""

    def build(script: Script, *, name: str = "assistant", **options: Any) -> Agent:
        return Agent(name, model=ScriptedModel(script), **options)

    return build


@pytest.fixture
def orchestrator_factory(agent_factory: AgentFactory) -> OrchestratorFactory:
    """Build a one-agent orchestrator: `orchestrator_factory(script, middleware=[...])`."""

    def build(
        script: Script, *, middleware: Iterable[object] = (), **agent_options: Any
    ) -> Orchestrator:
        return Orchestrator(agent_factory(script, **agent_options), middleware=middleware)

    return build


def _reachable(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL; skips when Redis is down, but fails under `CI=true`."""
    import os

    from onionskin.stores._redis import redis_url as configured_url

    url = configured_url()
    if not _reachable(url):
        message = f"Redis is not reachable at {url} (set ONIONSKIN_REDIS_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; under CI=true a missing service is a failure")
        pytest.skip(message)
    return url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of its own for each test: tests share the server, never flush it."""
    from uuid import uuid4

    return f"onionskin-test:{uuid4().hex[:12]}"


DOWN_REDIS_URL = "redis://127.0.0.1:1/0"
"""A Redis URL nothing listens on: for fail-open / fail-closed tests."""


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL URL; skips when it is down, but fails under `CI=true`."""
    import os
    from urllib.parse import urlsplit

    url = (
        os.environ.get("ONIONSKIN_POSTGRES_URL")
        or os.environ.get("DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )
    parts = urlsplit(url)
    if not _reachable(f"//{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"):
        message = f"PostgreSQL is not reachable at {url} (set ONIONSKIN_POSTGRES_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; under CI=true a missing service is a failure")
        pytest.skip(message)
    return url


SQL_BACKENDS = ("sqlite", "postgres")
"""The SQL dialects every SQL store test runs on."""


@pytest.fixture
async def database_factory(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[Callable[[str], SqlDatabase]]:
    """`database_factory("sqlite" | "postgres")`: a fresh, empty database for this test.

    SQLite gets a file under the test's tmp_path; PostgreSQL a schema of its own (dropped
    afterwards), so tests share the server but never each other's tables.
    """
    from uuid import uuid4

    from onionskin.stores._sql import SqlDatabase

    opened: list[SqlDatabase] = []
    schemas: list[str] = []

    def make(backend: str) -> SqlDatabase:
        if backend == "sqlite":
            database = SqlDatabase(f"sqlite:///{tmp_path}/onionskin-{len(opened)}.db")
        elif backend == "postgres":
            url = request.getfixturevalue("postgres_url")
            schemas.append(f"t_{uuid4().hex[:16]}")
            database = SqlDatabase(url, schema=schemas[-1])
        else:
            raise ValueError(f"unknown SQL backend {backend!r}")
        opened.append(database)
        return database

    yield make
    for database in opened:
        await database.aclose()
    if schemas:
        cleaner = SqlDatabase(request.getfixturevalue("postgres_url"))
        async with cleaner.transaction() as connection:
            for schema in schemas:
                await connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await cleaner.aclose()
