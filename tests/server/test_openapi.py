"""The OpenAPI document: every route, its bodies, its security, its errors as problem+json."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from tests.server.conftest import Served

from onionskin.server.auth import authenticated
from onionskin.server.openapi import problem_openapi
from onionskin.server.tenancy import RequestTenant, admin_tenant, request_tenant

OPERATIONS = {
    "/api/v1/pipelines/{name}/execute": "execute_pipeline",
    "/api/v1/organizations/{org_id}/pipelines/{name}/execute": "execute_org_pipeline",
    "/api/v1/admin/pipelines/execute": "execute_admin_pipeline",
}
RESOURCE_OPERATIONS = {
    ("get", "/runs"): ("list_runs", "list_org_runs"),
    ("get", "/runs/{run_id}"): ("get_run", "get_org_run"),
    ("get", "/runs/{run_id}/checkpoints"): ("list_checkpoints", "list_org_checkpoints"),
    ("post", "/runs/{run_id}/replay"): ("replay_run", "replay_org_run"),
    ("get", "/costs"): ("get_costs", "get_org_costs"),
    ("get", "/budget"): ("get_budget", "get_org_budget"),
    ("get", "/approvals"): ("list_approvals", "list_org_approvals"),
    ("post", "/approvals/{request_id}/approve"): ("approve_request", "approve_org_request"),
    ("post", "/approvals/{request_id}/deny"): ("deny_request", "deny_org_request"),
}
"""Each resource route, at /api/v1{path} and /api/v1/organizations/{org_id}{path}."""


@pytest.fixture
async def document(served: Served) -> dict[str, Any]:
    response = await served.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_route_is_documented_with_its_operation_id(document: dict[str, Any]) -> None:
    found = {
        (method, path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    expected = {("post", path): operation_id for path, operation_id in OPERATIONS.items()}
    for (method, path), (plain, in_org) in RESOURCE_OPERATIONS.items():
        expected[(method, f"/api/v1{path}")] = plain
        expected[(method, f"/api/v1/organizations/{{org_id}}{path}")] = in_org

    assert found == expected


def test_bodies_and_answers_have_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path, operation_id in OPERATIONS.items():
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        ok = operation["responses"]["200"]["content"]

        expected = "AdminExecuteRequest" if "admin" in operation_id else "ExecuteRequest"
        assert body == f"#/components/schemas/{expected}"
        assert ok["application/json"]["schema"]["$ref"] == "#/components/schemas/ExecuteResponse"
        assert "text/event-stream" in ok
    assert set(schemas["ExecuteResponse"]["required"]) >= {
        "run_id",
        "output",
        "stopped",
        "usage",
        "cost_usd",
        "duration_ms",
    }
    assert schemas["ExecuteResponse"]["properties"]["cost_usd"]["type"] == "string"
    assert "pipeline" in schemas["AdminExecuteRequest"]["required"]


def test_every_error_is_documented_as_problem_json(document: dict[str, Any]) -> None:
    for path in OPERATIONS:
        responses = document["paths"][path]["post"]["responses"]
        errors = {status: r for status, r in responses.items() if int(status) >= 400}

        assert set(errors) >= {"400", "401", "403", "404", "413", "422", "429", "500"}
        for response in errors.values():
            assert list(response["content"]) == ["application/problem+json"]
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema["$ref"] == "#/components/schemas/ProblemDetails"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_security_and_the_tenant_header_are_documented(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT, or a static API key.",
    }
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    for path in OPERATIONS:
        operation = document["paths"][path]["post"]
        assert {"HTTPBearer": []} in operation["security"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "X-Org-ID" in headers


SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
SCHEMES = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT, or a static API key.",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A static API key.",
    },
}
ORG_HEADER = {
    "name": "X-Org-ID",
    "in": "header",
    "required": False,
    "description": "The organization; must match the credentials'.",
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "title": "X-Org-Id",
        "description": "The organization; must match the credentials'.",
    },
}
Tenant = Annotated[RequestTenant, Depends(request_tenant)]
Admin = Annotated[RequestTenant, Depends(admin_tenant)]
PUBLIC = ("/openapi.json", "/docs", "/redoc", "/dashboard")


def test_every_operation_documents_both_schemes_and_the_tenant_header(
    document: dict[str, Any],
) -> None:
    """The dependencies read the headers themselves; the document still says what they read."""
    assert document["components"]["securitySchemes"] == SCHEMES
    operations = [
        (path, operation)
        for path, methods in document["paths"].items()
        for operation in methods.values()
    ]
    assert len(operations) == len(OPERATIONS) + 2 * len(RESOURCE_OPERATIONS)
    for path, operation in operations:
        assert path.startswith("/api/v1/")
        assert operation["security"] == SECURITY, path
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert headers == [ORG_HEADER], path
        assert operation["parameters"][-1] == ORG_HEADER, path  # after path and query ones
    for path in PUBLIC:
        assert not any(documented.startswith(path) for documented in document["paths"])


def test_only_routes_that_authenticate_document_security() -> None:
    """Public routes have no security; `authenticated` adds it, the tenant ones the header."""
    app = FastAPI(title="t", version="1")
    secured = APIRouter(prefix="/secured", dependencies=[Depends(authenticated)])

    @secured.get("/plain", operation_id="plain")
    async def plain() -> None: ...

    @secured.get("/tenant", operation_id="tenant")
    async def tenant(found: Tenant) -> None: ...

    @app.get("/public", operation_id="public")
    async def public() -> None: ...

    @app.get("/admin/{org_id}", operation_id="admin")
    async def admin(org_id: str, found: Admin) -> None: ...

    @app.get("/hidden", include_in_schema=False)
    async def hidden(found: Tenant) -> None: ...

    app.include_router(secured)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    paths = app.openapi()["paths"]

    assert "security" not in paths["/public"]["get"]
    assert "parameters" not in paths["/public"]["get"]
    assert paths["/secured/plain"]["get"]["security"] == SECURITY
    assert "parameters" not in paths["/secured/plain"]["get"]
    assert paths["/secured/tenant"]["get"]["security"] == SECURITY
    assert paths["/secured/tenant"]["get"]["parameters"] == [ORG_HEADER]
    assert paths["/admin/{org_id}"]["get"]["security"] == SECURITY
    assert [p["name"] for p in paths["/admin/{org_id}"]["get"]["parameters"]] == [
        "org_id",
        "X-Org-ID",
    ]
    assert "/hidden" not in paths
    assert app.openapi()["components"]["securitySchemes"] == SCHEMES


def test_an_app_without_authentication_documents_no_scheme() -> None:
    app = FastAPI(title="t", version="1")

    @app.get("/public", operation_id="public")
    async def public() -> None: ...

    app.openapi = problem_openapi(app)  # type: ignore[method-assign]

    assert "securitySchemes" not in app.openapi().get("components", {})
