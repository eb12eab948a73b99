"""Every execute route authenticates (through its tenant dependency), before the body counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from tests.server.conftest import Served

from onionskin.server.auth import authenticated
from onionskin.server.routes import execute

PATHS = (
    "/api/v1/pipelines/echo/execute",
    "/api/v1/organizations/acme/pipelines/echo/execute",
    "/api/v1/admin/pipelines/execute",
)


def calls(dependant: Dependant) -> Iterator[object]:
    """Every dependency of `dependant`, however deep."""
    for sub in dependant.dependencies:
        yield sub.call
        yield from calls(sub)


def test_every_route_of_the_router_depends_on_authentication() -> None:
    routes = [route for route in execute.router.routes if isinstance(route, APIRoute)]

    assert len(routes) == len(PATHS)
    for route in routes:
        assert authenticated in set(calls(route.dependant)), route.path


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("body", [{"input": "hi", "pipeline": "echo"}, {"wrong": 1}])
async def test_a_caller_without_credentials_is_refused_whatever_the_body(
    served: Served, path: str, body: dict[str, object]
) -> None:
    response = await served.client.post(path, json=body)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
