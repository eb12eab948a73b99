"""Which tenant a request acts for (seed 000), and the request metadata runs see.

Seed 000 names three sources, highest priority first: the credentials' claims (`org_id`,
`org_role`, and `sub` as the user; an API key's tenant counts as claims), the `X-Org-ID`
header, and the URL path `/organizations/{org_id}/...`. Two sources that are present and
disagree refuse the request (`TenantError`, 403) rather than letting one win silently; the
error names the sources, never the other tenant's id.

Credentials that prove who is calling but name no organisation are refused as well: the
header and the path are the caller's own words, so letting them choose the tenant would let
any authenticated caller act for any organisation. Only anonymous local mode
(`--insecure-local`) takes the tenant from the header or the path alone.

The result is put on `request.state` (`org_id`, `user_id`, `org_role`, as in seed 000) and
becomes the runs' `TenantContext` and request metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from onionskin.core.errors import TenantError
from onionskin.core.ids import new_id
from onionskin.core.tenant import TenantContext
from onionskin.server.auth import Principal, authenticated

ORG_HEADER = "X-Org-ID"
RESERVED_METADATA = frozenset({"tenant_id", "workspace_id", "user_id", "org_role", "request_id"})
"""Metadata keys the server sets from the request itself; a client may not send them."""
ADMIN_ROLE = "admin"


class RoleRequiredError(TenantError):
    """The caller's role in the organisation does not allow this endpoint."""

    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(
            f"this endpoint needs the org_role {role!r} in the organization; ask an "
            "administrator of the organization to run it"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.role,))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTenant:
    """The tenant, user and role a request acts as, and the request's id."""

    org_id: str
    """The organisation (the runs' `tenant_id`)."""
    user_id: str | None
    """The caller (`sub`), for audit trails."""
    org_role: str | None
    """The caller's role in the organisation."""
    request_id: str
    """The request's id, also in the `X-Request-ID` response header."""

    @property
    def context(self) -> TenantContext:
        """The runs' tenant context."""
        return TenantContext(tenant_id=self.org_id, user_id=self.user_id)

    def metadata(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """The request metadata of a run: `given` (the client's) and the server's own keys.

        Values are JSON values (Any).
        """
        return {
            **(given or {}),
            "tenant_id": self.org_id,
            "user_id": self.user_id,
            "org_role": self.org_role,
            "request_id": self.request_id,
        }


def resolve_org(principal: Principal, *, header: str | None, path: str | None) -> str:
    """The organisation a request acts for, from its credentials, header and path.

    Raises:
        TenantError: no source, sources that disagree, or credentials without a tenant.
    """
    if principal.method != "anonymous" and principal.tenant_id is None:
        raise TenantError(
            "the credentials name no organization (no org_id claim): ask for a token "
            "issued for an organization"
        )
    sources = {
        "credentials": principal.tenant_id,
        f"{ORG_HEADER} header": header,
        "URL path": path,
    }
    present = [(name, value) for name, value in sources.items() if value is not None]
    if not present:
        raise TenantError(
            f"no organization: send the {ORG_HEADER} header or use "
            "/api/v1/organizations/{org_id}/..."
        )
    first_name, org = present[0]
    for name, value in present[1:]:
        if value != org:
            raise TenantError(
                f"the {first_name} and the {name} name different organizations; refusing "
                "a request with two tenants"
            )
    return org


def _context(org_id: str, principal: Principal) -> TenantContext:
    try:
        return TenantContext(tenant_id=org_id, user_id=principal.user_id)
    except TenantError as error:
        text = str(error).replace("TenantContext.tenant_id", "the organization id")
        raise TenantError(text.replace("TenantContext.user_id", "the user id (sub)")) from None


ORG_HEADER_PARAMETER: dict[str, Any] = {
    "name": ORG_HEADER,
    "in": "header",
    "required": False,
    "description": "The organization; must match the credentials'.",
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "title": "X-Org-Id",
        "description": "The organization; must match the credentials'.",
    },
}
"""The OpenAPI parameter of the `X-Org-ID` header, which `request_tenant` reads itself.

Values are JSON values (Any); `onionskin.server.openapi` adds it to the operations.
"""


async def request_tenant(request: Request) -> RequestTenant:
    """FastAPI dependency: the request's tenant, also set on `request.state` (seed 000).

    It authenticates the request itself (`authenticated`, once per request) and reads the
    `X-Org-ID` header itself: one dependency for FastAPI to solve, not three.
    """
    principal = await authenticated(request)
    org = resolve_org(
        principal,
        header=request.headers.get(ORG_HEADER),
        path=request.path_params.get("org_id"),
    )
    context = _context(org, principal)
    state = request.state
    request_id = getattr(state, "request_id", None)
    if not request_id:  # no RequestIdMiddleware: one id all the same, however often asked
        request_id = state.request_id = new_id()
    state.org_id = context.tenant_id
    state.user_id = context.user_id
    state.org_role = principal.role
    return RequestTenant(
        org_id=context.tenant_id,
        user_id=context.user_id,
        org_role=principal.role,
        request_id=request_id,
    )


async def admin_tenant(request: Request) -> RequestTenant:
    """FastAPI dependency: the request's tenant, for callers with `org_role` admin only."""
    tenant = await request_tenant(request)
    if tenant.org_role != ADMIN_ROLE:
        raise RoleRequiredError(ADMIN_ROLE)
    return tenant


AUTHENTICATING = frozenset({authenticated, request_tenant, admin_tenant})
"""The dependencies that authenticate: a route with one of them documents the security
schemes (`onionskin.server.openapi`), and every /api/v1 route needs one."""
TENANT_DEPENDENCIES = frozenset({request_tenant, admin_tenant})
"""The dependencies that read the `X-Org-ID` header: their routes document it."""
