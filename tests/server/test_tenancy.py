"""Seed 000's tenant sources: claims, then X-Org-ID, then the path; two tenants never meet."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, Request
from tests.server.conftest import (
    ACME_KEY,
    GLOBEX_KEY,
    Serve,
    Served,
    acme,
    bearer,
    frames,
    globex,
    token,
)

from onionskin.core.clock import SYSTEM_CLOCK
from onionskin.server import ServerSettings
from onionskin.server.tenancy import RequestTenant, request_tenant
from onionskin.stores.sql_checkpoints import SqlCheckpointStore
from onionskin.tenancy.cost import current_period

ORG_EXECUTE = "/api/v1/organizations/{}/pipelines/{}/execute"
EXECUTE = "/api/v1/pipelines/{}/execute"
ADMIN = "/api/v1/admin/pipelines/execute"


async def test_each_tenant_streams_its_own_run_only(served: Served) -> None:
    a = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"), json={"input": "A", "stream": True}, headers=acme()
    )
    b = await served.client.post(
        ORG_EXECUTE.format("globex", "echo"), json={"input": "B", "stream": True}, headers=globex()
    )

    a_events, b_events = frames(a.text), frames(b.text)
    assert {f.data["tenant_id"] for f in a_events} == {"acme"}
    assert {f.data["tenant_id"] for f in b_events} == {"globex"}
    assert a_events[-1].data["output"] == "echo: A"
    assert "globex" not in a.text
    assert "acme" not in b.text
    assert a_events[0].data["run_id"] != b_events[0].data["run_id"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tenant_cannot_use_another_tenants_path(served: Served, stream: bool) -> None:
    response = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"), json={"input": "x", "stream": stream}, headers=globex()
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "forbidden"
    assert "credentials and the URL path name different organizations" in body["detail"]
    assert "acme" not in response.text  # the sources are named, never the other tenant
    assert "run_started" not in response.text


async def test_an_api_key_counts_as_the_credentials_source(served: Served) -> None:
    refused = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"), json={"input": "x"}, headers={"X-API-Key": GLOBEX_KEY}
    )
    allowed = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"), json={"input": "x"}, headers={"X-API-Key": ACME_KEY}
    )

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert allowed.json()["tenant_id"] == "acme"


@pytest.mark.parametrize(
    ("path_org", "header_org", "sources"),
    [
        (None, "globex", "credentials and the X-Org-ID header"),
        ("acme", "globex", "credentials and the X-Org-ID header"),
        ("globex", "acme", "credentials and the URL path"),
    ],
)
async def test_conflicting_sources_are_refused(
    served: Served, path_org: str | None, header_org: str, sources: str
) -> None:
    url = EXECUTE.format("echo") if path_org is None else ORG_EXECUTE.format(path_org, "echo")

    response = await served.client.post(
        url, json={"input": "x"}, headers={**acme(), "X-Org-ID": header_org}
    )

    assert response.status_code == 403
    assert f"the {sources} name different organizations" in response.json()["detail"]


async def test_agreeing_sources_are_accepted(served: Served) -> None:
    response = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"),
        json={"input": "x"},
        headers={**acme(), "X-Org-ID": "acme"},
    )

    assert response.status_code == 200


async def test_credentials_without_an_organization_are_refused(served: Served) -> None:
    """A token without org_id may not pick its tenant with the header or the path."""
    headers = {**bearer(token({"sub": "mallory"})), "X-Org-ID": "acme"}

    response = await served.client.post(
        ORG_EXECUTE.format("acme", "echo"), json={"input": "x"}, headers=headers
    )

    assert response.status_code == 403
    assert "no org_id claim" in response.json()["detail"]


@pytest.mark.parametrize("org", ["a/b", "acme..x", "-acme", "x" * 129])
async def test_a_malformed_organization_id_is_refused(served: Served, org: str) -> None:
    response = await served.client.post(
        EXECUTE.format("echo"), json={"input": "x"}, headers=bearer(token({"org_id": org}))
    )

    assert response.status_code == 403
    assert "organization id" in response.json()["detail"]


async def test_a_user_id_the_stores_cannot_hold_is_refused(served: Served) -> None:
    claims = {"org_id": "acme", "sub": "auth0|1234"}

    response = await served.client.post(
        EXECUTE.format("echo"), json={"input": "x"}, headers=bearer(token(claims))
    )

    assert response.status_code == 403
    assert "the user id (sub)" in response.json()["detail"]


async def test_runs_are_checkpointed_under_their_tenant_only(served: Served) -> None:
    a = await served.client.post(EXECUTE.format("echo"), json={"input": "A"}, headers=acme())
    b = await served.client.post(EXECUTE.format("echo"), json={"input": "B"}, headers=globex())
    store = served.runner.checkpoints
    assert isinstance(store, SqlCheckpointStore)

    acme_runs = {run.run_id for run in await store.list_runs(tenant_id="acme")}
    globex_runs = {run.run_id for run in await store.list_runs(tenant_id="globex")}

    assert acme_runs == {a.json()["run_id"]}
    assert globex_runs == {b.json()["run_id"]}
    assert await store.get_checkpoints(a.json()["run_id"], tenant_id="globex") == []


async def test_refused_requests_store_nothing(served: Served) -> None:
    """Bad input changes nothing: no run, no checkpoint, no cost for a refused request."""
    refused = [
        await served.client.post(
            ORG_EXECUTE.format("acme", "echo"), json={"input": "x"}, headers=globex()
        ),
        await served.client.post(
            EXECUTE.format("echo"), json={"input": "x"}, headers={**acme(), "X-Org-ID": "globex"}
        ),
        await served.client.post(
            EXECUTE.format("echo"), json={"input": {"parts": 1}, "stream": True}, headers=acme()
        ),
        await served.client.post(EXECUTE.format("echo"), json={"input": 1}, headers=acme()),
    ]
    store, ledger = served.runner.checkpoints, served.runner.ledger
    period = current_period(SYSTEM_CLOCK)

    assert [r.status_code for r in refused] == [403, 403, 422, 422]
    for tenant in ("acme", "globex"):
        assert await store.list_runs(tenant_id=tenant) == []
        assert await ledger.entries(tenant_id=tenant, period=period) == []


async def test_costs_are_recorded_under_their_tenant(served: Served) -> None:
    response = await served.client.post(EXECUTE.format("echo"), json={"input": "A"}, headers=acme())
    ledger, period = served.runner.ledger, current_period(SYSTEM_CLOCK)

    entries = await ledger.entries(tenant_id="acme", period=period)
    others = await ledger.entries(tenant_id="globex", period=period)

    assert [(e.tenant_id, e.run_id) for e in entries] == [("acme", response.json()["run_id"])]
    assert others == []


# --- request.state (seed 000) -------------------------------------------------------------


async def test_request_state_carries_the_tenant_user_and_role(served: Served) -> None:
    seen: dict[str, Any] = {}

    async def probe(
        request: Request, tenant: Annotated[RequestTenant, Depends(request_tenant)]
    ) -> dict[str, str]:
        seen.update(
            org_id=request.state.org_id,
            user_id=request.state.user_id,
            org_role=request.state.org_role,
        )
        return {}

    served.app.add_api_route("/api/v1/organizations/{org_id}/probe", probe, methods=["GET"])

    response = await served.client.get("/api/v1/organizations/acme/probe", headers=acme())

    assert response.status_code == 200
    assert seen == {"org_id": "acme", "user_id": "alice", "org_role": "admin"}


# --- the admin endpoint (seed 000) -------------------------------------------------------


async def test_the_admin_endpoint_runs_in_the_admins_organization(served: Served) -> None:
    response = await served.client.post(
        ADMIN, json={"pipeline": "echo", "input": "hi", "stream": True}, headers=acme()
    )

    events = frames(response.text)
    assert events[-1].event == "run_completed"
    assert {f.data["tenant_id"] for f in events} == {"acme"}


@pytest.mark.parametrize("headers", [globex(), {"X-API-Key": GLOBEX_KEY}])
async def test_the_admin_endpoint_refuses_other_roles(
    served: Served, headers: dict[str, str]
) -> None:
    response = await served.client.post(
        ADMIN, json={"pipeline": "echo", "input": "hi"}, headers=headers
    )

    assert response.status_code == 403
    assert "needs the org_role 'admin'" in response.json()["detail"]


async def test_the_admin_endpoint_checks_the_header_tenant_too(served: Served) -> None:
    response = await served.client.post(
        ADMIN,
        json={"pipeline": "echo", "input": "hi"},
        headers={**acme(), "X-Org-ID": "globex"},
    )

    assert response.status_code == 403


async def test_the_admin_endpoint_validates_the_pipeline_name(served: Served) -> None:
    missing = await served.client.post(ADMIN, json={"input": "hi"}, headers=acme())
    unknown = await served.client.post(
        ADMIN, json={"pipeline": "../echo", "input": "hi"}, headers=acme()
    )

    assert missing.status_code == 422
    assert unknown.status_code == 404


# --- anonymous local mode -----------------------------------------------------------------


async def test_anonymous_mode_takes_the_tenant_from_the_header_or_the_path(serve: Serve) -> None:
    server = await serve(ServerSettings(anonymous=True))

    by_header = await server.client.post(
        EXECUTE.format("echo"), json={"input": "x"}, headers={"X-Org-ID": "acme"}
    )
    by_path = await server.client.post(ORG_EXECUTE.format("globex", "echo"), json={"input": "x"})
    conflict = await server.client.post(
        ORG_EXECUTE.format("globex", "echo"), json={"input": "x"}, headers={"X-Org-ID": "acme"}
    )
    nothing = await server.client.post(EXECUTE.format("echo"), json={"input": "x"})
    admin = await server.client.post(
        ADMIN, json={"pipeline": "echo", "input": "x"}, headers={"X-Org-ID": "acme"}
    )

    assert (by_header.json()["tenant_id"], by_path.json()["tenant_id"]) == ("acme", "globex")
    assert conflict.status_code == 403
    assert nothing.status_code == 403
    assert "no organization" in nothing.json()["detail"]
    assert admin.status_code == 403  # anonymous callers have no role


async def test_anonymous_mode_still_refuses_bad_credentials(serve: Serve) -> None:
    server = await serve(ServerSettings(anonymous=True))

    response = await server.client.post(
        EXECUTE.format("echo"),
        json={"input": "x"},
        headers={**bearer(token({"org_id": "acme"})), "X-Org-ID": "acme"},
    )

    assert response.status_code == 401
