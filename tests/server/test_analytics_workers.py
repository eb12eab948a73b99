"""Two `onionskin serve` processes, one database, one Redis: live events reach every worker."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx2
from tests.server._live_server import WS, serve_processes, take_events
from tests.server.conftest import SECRET, bearer, token
from websockets.asyncio.client import connect


def _project(root: Path) -> Path:
    (root / "agents").mkdir(parents=True)
    # A bare model name is the scripted stand-in: it echoes, with no key and no network.
    (root / "agents" / "echo.yaml").write_text("model: scripted\n", encoding="utf-8")
    return root


async def test_a_client_on_one_worker_sees_the_runs_of_another(
    tmp_path: Path, redis_url: str
) -> None:
    # Tenants of this test only: other tests may share the Redis server and its channels.
    acme, globex = f"acme-{uuid4().hex[:8]}", f"globex-{uuid4().hex[:8]}"
    tokens = {org: token({"org_id": org, "sub": "alice"}) for org in (acme, globex)}
    project = _project(tmp_path / "project")
    environ = {"ONIONSKIN_JWT_SECRET": SECRET, "ONIONSKIN_REDIS_URL": redis_url}
    db = f"sqlite:///{tmp_path}/shared.db"

    async with (
        serve_processes(project, 2, db=db, environ=environ, logs=tmp_path) as (one, two),
        connect(f"ws://{one}{WS}?token={tokens[acme]}", proxy=None) as acme_on_one,
        connect(f"ws://{one}{WS}?token={tokens[globex]}", proxy=None) as globex_on_one,
        httpx2.AsyncClient(base_url=f"http://{two}") as client_of_two,
    ):
        ran = await client_of_two.post(
            "/api/v1/pipelines/echo/execute", json={"input": "hi"}, headers=bearer(tokens[acme])
        )
        run_id = ran.json()["run_id"]
        seen = await take_events(acme_on_one, until_type="run_completed", run_id=run_id)
        other = await client_of_two.post(
            "/api/v1/pipelines/echo/execute", json={"input": "yo"}, headers=bearer(tokens[globex])
        )
        seen_by_globex = await take_events(globex_on_one, until_type="run_completed")
        listed = await client_of_two.get("/api/v1/runs", headers=bearer(tokens[acme]))

    assert ran.status_code == 200
    assert seen[0]["type"] == "run_started"
    assert {event["run_id"] for event in seen} == {run_id}
    assert {event["tenant_id"] for event in seen} == {acme}
    # In order on one channel per tenant: acme's events would have come first.
    assert {event["tenant_id"] for event in seen_by_globex} == {globex}
    assert {event["run_id"] for event in seen_by_globex} == {other.json()["run_id"]}
    # Both workers share the database: the run is listed wherever it ran.
    assert [run["run_id"] for run in listed.json()["runs"]] == [run_id]
