"""Every execute route authenticates (through its tenant dependency), before the body counts.

The tenant dependency is the route's only one and has no parameters FastAPI would solve:
it authenticates and reads `X-Org-ID` itself (solving sub-dependencies on every request was
a tenth of a worker's CPU).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from tests.server.conftest import Served

from onionskin.server.routes import execute
from onionskin.server.tenancy import AUTHENTICATING, TENANT_DEPENDENCIES

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
        assert set(calls(route.dependant)) & AUTHENTICATING, route.path


def test_every_route_of_the_router_solves_one_dependency_without_parameters() -> None:
    for route in execute.router.routes:
        assert isinstance(route, APIRoute)
        [tenant] = route.dependant.dependencies
        assert tenant.call in TENANT_DEPENDENCIES, route.path
        assert tenant.dependencies == [], route.path
        params = (tenant.path_params, tenant.query_params, tenant.header_params)
        assert params == ([], [], []), route.path
        assert (tenant.cookie_params, tenant.body_params) == ([], []), route.path
        assert tenant.request_param_name == "request", route.path


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("body", [{"input": "hi", "pipeline": "echo"}, {"wrong": 1}])
async def test_a_caller_without_credentials_is_refused_whatever_the_body(
    served: Served, path: str, body: dict[str, object]
) -> None:
    response = await served.client.post(path, json=body)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
