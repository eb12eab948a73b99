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


@pytest.fixture
async def document(served: Served) -> dict[str, Any]:
    response = await served.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_route_is_documented_with_its_operation_id(document: dict[str, Any]) -> None:
    found = {path: ops["post"]["operationId"] for path, ops in document["paths"].items()}

    assert found == OPERATIONS


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
