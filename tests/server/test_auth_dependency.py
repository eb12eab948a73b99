"""`authenticated` and `request_tenant` read the headers themselves, as FastAPI's schemes did.

They replaced `HTTPBearer`, `APIKeyHeader` and `Header` sub-dependencies, which FastAPI
solved one by one on every request: the headers must be read exactly as those read them, a
malformed header must still be refused (never read as absent), and the credentials must be
checked once per request however many dependencies ask for them.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx2
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from tests.server.conftest import ACME_KEY, GLOBEX_KEY, Serve, Served, acme, bearer, settings, token

from onionskin.core.errors import AuthenticationError
from onionskin.server import ServerSettings
from onionskin.server.auth import Authenticator, Principal, authenticated, credentials
from onionskin.server.errors import install_problem_handlers
from onionskin.server.tenancy import RequestTenant, admin_tenant, request_tenant

EXECUTE = "/api/v1/pipelines/echo/execute"
RUNS = "/api/v1/runs"
ACME_CLAIMS = {"org_id": "acme", "org_role": "admin", "sub": "alice"}

AUTHORIZATIONS = [
    "Bearer abc",
    "bearer abc",
    "BEARER abc",
    "BeArEr abc",
    "Bearer   abc  ",
    "Bearer a b",
    "Bearer a.b.c",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "bearer",
    "",
    " ",
    " Bearer abc",
    "Bearer\tabc",
    "Basic YWxpY2U6c2VjcmV0",
    "Token abc",
    "Bearerabc",
]
"""Values of `Authorization`, accepted and refused ones."""
API_KEYS = ["k", " k ", "", " ", ACME_KEY]


def _request(headers: list[tuple[str, str]]) -> Request:
    raw = [(name.lower().encode(), value.encode("latin-1")) for name, value in headers]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.mark.parametrize("value", AUTHORIZATIONS)
async def test_authorization_is_read_as_http_bearer_reads_it(value: str) -> None:
    """The token HTTPBearer would give; where it gives none for a header sent: refused."""
    request = _request([("Authorization", value)])
    expected = await HTTPBearer(auto_error=False)(request)

    if expected is None:
        with pytest.raises(AuthenticationError, match="invalid or missing credentials"):
            credentials(request.headers)
    else:
        assert credentials(request.headers) == (expected.credentials, None)


@pytest.mark.parametrize("value", API_KEYS)
async def test_x_api_key_is_read_as_api_key_header_reads_it(value: str) -> None:
    """The key APIKeyHeader would give; where it gives none for a header sent: refused."""
    request = _request([("X-API-Key", value)])
    expected = await APIKeyHeader(name="X-API-Key", auto_error=False)(request)

    if expected is None:
        with pytest.raises(AuthenticationError, match="invalid or missing credentials"):
            credentials(request.headers)
    else:
        assert credentials(request.headers) == (None, expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], (None, None)),
        ([("Authorization", "bearer tok")], ("tok", None)),
        ([("x-api-key", "key")], (None, "key")),
        ([("AUTHORIZATION", "Bearer tok"), ("X-API-KEY", "key")], ("tok", "key")),
        ([("Authorization", "Bearer first"), ("Authorization", "Basic x")], ("first", None)),
    ],
)
def test_credentials_of_headers(
    headers: list[tuple[str, str]], expected: tuple[str | None, str | None]
) -> None:
    """Names in any case; absent headers are None; of repeated ones the first counts."""
    assert credentials(_request(headers).headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [("X-API-Key", "key"), ("Authorization", "Basic x")],
        [("X-API-Key", "key"), ("Authorization", "")],
        [("Authorization", "Bearer tok"), ("X-API-Key", "")],
    ],
)
def test_a_malformed_header_is_refused_beside_a_good_one(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(AuthenticationError):
        credentials(_request(headers).headers)


# --- over HTTP --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
@pytest.mark.parametrize("url", [EXECUTE, RUNS])
async def test_the_bearer_scheme_is_case_insensitive(served: Served, scheme: str, url: str) -> None:
    headers = {"Authorization": f"{scheme}  {token(ACME_CLAIMS)} "}
    if url == EXECUTE:
        response = await served.client.post(url, json={"input": "hi"}, headers=headers)
    else:
        response = await served.client.get(url, headers=headers)

    assert response.status_code == 200, response.text


MALFORMED = [
    {"Authorization": ""},
    {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer   "},
    {"X-API-Key": ""},
]


@pytest.mark.parametrize("url", [EXECUTE, RUNS])
@pytest.mark.parametrize("headers", MALFORMED)
async def test_anonymous_mode_refuses_a_malformed_header_rather_than_ignoring_it(
    serve: Serve, url: str, headers: dict[str, str]
) -> None:
    server = await serve(ServerSettings(anonymous=True))
    org = {"X-Org-ID": "acme"}

    async def call(extra: dict[str, str]) -> httpx2.Response:
        if url == EXECUTE:
            return await server.client.post(url, json={"input": "x"}, headers={**org, **extra})
        return await server.client.get(url, headers={**org, **extra})

    assert (await call({})).status_code == 200
    refused = await call(headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": ACME_KEY, **acme()},
        {"X-API-Key": ACME_KEY, **bearer(ACME_KEY)},
        {"X-API-Key": GLOBEX_KEY, **bearer(GLOBEX_KEY)},
        {"X-API-Key": "", **acme()},
        {"X-API-Key": ACME_KEY, "Authorization": ""},
        {"X-API-Key": ACME_KEY, "Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ],
)
@pytest.mark.parametrize("url", [EXECUTE, RUNS])
async def test_two_credentials_or_a_malformed_second_one_are_refused(
    served: Served, headers: dict[str, str], url: str
) -> None:
    if url == EXECUTE:
        response = await served.client.post(url, json={"input": "hi"}, headers=headers)
    else:
        response = await served.client.get(url, headers=headers)

    assert response.status_code == 401


def _count_authentications(app: FastAPI) -> list[Principal]:
    checked: list[Principal] = []
    authenticator: Authenticator = app.state.authenticator
    authenticate = authenticator.authenticate

    async def counting(*, bearer: str | None, api_key: str | None) -> Principal:
        principal = await authenticate(bearer=bearer, api_key=api_key)
        checked.append(principal)
        return principal

    authenticator.authenticate = counting  # type: ignore[method-assign]
    return checked


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", EXECUTE, {"input": "hi"}),
        ("POST", "/api/v1/organizations/acme/pipelines/echo/execute", {"input": "hi"}),
        ("POST", "/api/v1/admin/pipelines/execute", {"input": "hi", "pipeline": "echo"}),
        ("GET", RUNS, None),  # the router's `authenticated`, then `request_tenant`
        ("GET", "/api/v1/organizations/acme/costs", None),
        ("GET", "/api/v1/approvals", None),
    ],
)
async def test_the_credentials_are_checked_once_per_request(
    served: Served, method: str, url: str, body: dict[str, Any] | None
) -> None:
    checked = _count_authentications(served.app)

    first = await served.client.request(method, url, json=body, headers=acme())
    second = await served.client.request(method, url, json=body, headers={"X-API-Key": ACME_KEY})

    assert (first.status_code, second.status_code) == (200, 200)
    assert [principal.method for principal in checked] == ["jwt", "api_key"]


# --- the dependencies on their own ------------------------------------------------------


def _app(server_settings: ServerSettings) -> FastAPI:
    """A bare app: a router that authenticates, and routes that also name the tenant."""
    app = FastAPI()
    app.state.authenticator = Authenticator(server_settings)
    install_problem_handlers(app)
    router = APIRouter(dependencies=[Depends(authenticated)])

    def state(request: Request, tenant: RequestTenant | None) -> dict[str, Any]:
        principal: Principal = request.state.principal
        names = ("org_id", "user_id", "org_role")
        return {
            "principal": [principal.tenant_id, principal.role, principal.user_id, principal.method],
            "state": {name: getattr(request.state, name, "unset") for name in names},
            "tenant": None if tenant is None else [tenant.org_id, tenant.user_id, tenant.org_role],
        }

    @router.get("/who")
    async def who(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Any:
        assert principal is request.state.principal
        return state(request, None)

    @router.get("/tenant")
    async def tenant(
        request: Request, found: Annotated[RequestTenant, Depends(request_tenant)]
    ) -> Any:
        return state(request, found)

    @router.get("/orgs/{org_id}/admin")
    async def admin(
        request: Request,
        found: Annotated[RequestTenant, Depends(admin_tenant)],
        again: Annotated[RequestTenant, Depends(request_tenant)],
    ) -> Any:
        assert found == again
        return state(request, found)

    app.include_router(router)
    return app


async def _get(app: FastAPI, url: str, headers: dict[str, str]) -> httpx2.Response:
    transport = httpx2.ASGITransport(app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(url, headers=headers)


async def test_the_principal_and_the_tenant_are_set_on_the_request_state() -> None:
    app = _app(settings())
    checked = _count_authentications(app)

    who = await _get(app, "/who", acme())
    tenant = await _get(app, "/tenant", {**acme(), "X-Org-ID": "acme"})
    admin = await _get(app, "/orgs/acme/admin", {"X-API-Key": ACME_KEY})

    assert who.json() == {
        "principal": ["acme", "admin", "alice", "jwt"],
        "state": {"org_id": "unset", "user_id": "unset", "org_role": "unset"},
        "tenant": None,
    }
    assert tenant.json() == {
        "principal": ["acme", "admin", "alice", "jwt"],
        "state": {"org_id": "acme", "user_id": "alice", "org_role": "admin"},
        "tenant": ["acme", "alice", "admin"],
    }
    user = admin.json()["tenant"][1]
    assert user.startswith("api-key-")
    assert admin.json()["state"] == {"org_id": "acme", "user_id": user, "org_role": "admin"}
    assert len(checked) == 3  # once per request, however many dependencies asked


@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        ("/tenant", {"X-Org-ID": "globex", **acme()}, 403),  # the header disagrees
        ("/tenant", {"x-org-id": "globex", **acme()}, 403),  # read in any case
        ("/tenant", {"X-Org-ID": "", **acme()}, 403),  # empty is present, not absent
        ("/tenant", {"X-Org-ID": "acme", "X-API-Key": ACME_KEY}, 200),
        ("/orgs/globex/admin", acme(), 403),  # the path disagrees
        ("/orgs/globex/admin", {"X-API-Key": GLOBEX_KEY}, 403),  # a member, not an admin
        ("/orgs/acme/admin", {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, 401),
        ("/who", {}, 401),
    ],
)
async def test_the_tenant_dependencies_check_the_header_the_path_and_the_role(
    url: str, headers: dict[str, str], status: int
) -> None:
    response = await _get(_app(settings()), url, headers)

    assert response.status_code == status, response.text
