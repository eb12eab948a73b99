"""A small project served over HTTP: scripted models, a tool, tokens and API keys for two tenants.

The project (written to tmp_path) has agents whose model name says what they do: `tooling`
calls the `lookup` tool and then answers with its result, `echo` repeats the user's message,
`gate` waits until the test releases it (and records a cancellation), and the others fail
in one way each. Tenants: `acme` (role admin) and `globex` (role member).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from fastapi import FastAPI

from onionskin import (
    BudgetExceededError,
    ModelHTTPError,
    ModelRequest,
    RateLimitExceededError,
    ToolReturnPart,
    current_context,
)
from onionskin.core.calls import Model
from onionskin.project import Project, load_project
from onionskin.runtime.models.resolve import ModelOptions
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem, tool_call
from onionskin.server import ApiKeyGrant, ServerSettings, create_app
from onionskin.server.runner import PipelineRunner

SECRET = "a-test-secret-that-is-long-enough-for-every-hmac-algorithm-hs512"
ACME_KEY = "acme-admin-key-0123456789"
GLOBEX_KEY = "globex-member-key-0123456789"
LEAK = "postgresql://admin:hunter2@db.internal/prod"
"""Text the failing models put in their errors: it must never reach a client."""

PROJECT = {
    "agents/assistant.yaml": "model: tooling\ntools: [lookup]\n",
    "agents/echo.yaml": "model: echo\n",
    "agents/meta.yaml": "model: echo\n",
    "agents/slow.yaml": "model: gate\n",
    "agents/crash.yaml": "model: crash\n",
    "agents/provider.yaml": "model: provider\n",
    "agents/broke.yaml": "model: broke\n",
    "agents/limited.yaml": "model: limited\n",
    "agents/greeter.yaml": "model: echo\ninstructions: Greet {customer}.\n",
    "pipelines/research.yaml": "agents: [assistant, echo]\n",
    "tools/lookup.py": '''
        def lookup(topic: str) -> str:
            """Look a topic up."""
            return f"facts about {topic}"
    ''',
    "middleware/meta.py": """
        from onionskin import current_request_metadata

        def before(content, context):
            meta = current_request_metadata()
            keys = ("tenant_id", "user_id", "org_role", "request_id", "trace")
            seen = " ".join(f"{key}={meta.get(key)}" for key in keys)
            content["parts"].append({"text": seen})
            return content
    """,
}


def _user_text(request: ModelRequest) -> str:
    return " | ".join(part.text for part in request.messages[-1].parts if hasattr(part, "text"))


@dataclass
class Models:
    """The scripted models of the project, and the gate the `gate` model waits at."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False

    def _tooling(self, request: ModelRequest) -> ScriptItem:
        returned = [
            part.content
            for message in request.messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        ]
        if not returned:
            return tool_call("lookup", topic=request.messages[-1].text)
        return f"found: {returned[0]}"

    async def _gate(self, request: ModelRequest) -> ScriptItem:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "released"

    def resolve(self, spec: str, options: ModelOptions) -> Model:
        scripts: dict[str, Callable[[ModelRequest], ScriptItem]] = {
            "tooling": self._tooling,
            "echo": lambda request: f"echo: {_user_text(request)}",
            "crash": _crash,
            "provider": _provider,
            "broke": _broke,
            "limited": _limited,
        }
        if spec == "gate":
            return ScriptedModel(self._gate, name=spec)
        return ScriptedModel(
            scripts[spec], name=spec, input_price_per_mtok="2", output_price_per_mtok="8"
        )


def _crash(request: ModelRequest) -> ScriptItem:
    raise RuntimeError(f"could not reach {LEAK}")


def _provider(request: ModelRequest) -> ScriptItem:
    raise ModelHTTPError(f"upstream said: {LEAK}", status_code=500, retry_after=6.2)


def _broke(request: ModelRequest) -> ScriptItem:
    raise BudgetExceededError(current_context().tenant_id, limit=Decimal(5), spent=Decimal(5))


def _limited(request: ModelRequest) -> ScriptItem:
    raise RateLimitExceededError("tenant", 2.5)


def token(
    claims: Mapping[str, Any] | None = None,
    *,
    key: Any = SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    expires_in: float = 300,
) -> str:
    """A JWT with `exp` in `expires_in` seconds (`key`: a secret or a private key: Any)."""
    payload = {"exp": int(time.time() + expires_in), **(claims or {})}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def acme(**extra: Any) -> dict[str, str]:
    """Headers of acme's admin `alice`, by JWT."""
    return bearer(token({"org_id": "acme", "org_role": "admin", "sub": "alice", **extra}))


def globex(**extra: Any) -> dict[str, str]:
    """Headers of globex's member `bob`, by JWT."""
    return bearer(token({"org_id": "globex", "org_role": "member", "sub": "bob", **extra}))


def settings(**overrides: Any) -> ServerSettings:
    """A JWT secret and one API key per tenant, with `overrides`."""
    keys = {
        ACME_KEY: ApiKeyGrant(tenant_id="acme", role="admin"),
        GLOBEX_KEY: ApiKeyGrant(tenant_id="globex", role="member"),
    }
    return ServerSettings(**{"jwt_secret": SECRET, "api_keys": keys, **overrides})


@dataclass(frozen=True)
class Frame:
    """One Server-Sent Event."""

    event: str
    data: dict[str, Any]
    id: str


def frames(text: str) -> list[Frame]:
    """The events of an SSE body (comments skipped)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            found.append(Frame(fields["event"], json.loads(fields["data"]), fields["id"]))
    return found


@dataclass(frozen=True)
class Served:
    """A started app and a client talking to it in-process."""

    app: FastAPI
    client: httpx2.AsyncClient

    @property
    def runner(self) -> PipelineRunner:
        runner: PipelineRunner = self.app.state.runner
        return runner


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
def models() -> Models:
    return Models()


@pytest.fixture
def project(tmp_path: Path, models: Models) -> Project:
    root = tmp_path / "project"
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_project(root, model_resolver=models.resolve)


@pytest.fixture
async def serve(project: Project, tmp_path: Path) -> AsyncIterator[Serve]:
    """`await serve(settings, **create_app_options)`: the app started, with a client."""
    async with AsyncExitStack() as stack:

        async def start(server_settings: ServerSettings | None = None, **options: Any) -> Served:
            options.setdefault("database_url", f"sqlite:///{tmp_path}/server.db")
            app = create_app(project, server_settings or settings(), **options)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx2.ASGITransport(app, raise_app_exceptions=False)
            client = httpx2.AsyncClient(transport=transport, base_url="http://testserver")
            await stack.enter_async_context(client)
            return Served(app, client)

        yield start


@pytest.fixture
async def served(serve: Serve) -> Served:
    """The app with the default settings."""
    return await serve()
