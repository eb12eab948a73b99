"""The OpenAPI document: every route, its bodies, its security, its errors as problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.conftest import Served

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
