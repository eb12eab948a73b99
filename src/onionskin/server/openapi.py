"""The OpenAPI document, with every error response as `application/problem+json`.

FastAPI documents a response model under `application/json`; the error answers are really
`application/problem+json` (RFC 9457), so the document says so: a client generated from
it, or a schema-based test, then expects what the server sends.

Authentication and the `X-Org-ID` header are read by plain dependencies (`authenticated`,
`request_tenant`) rather than by FastAPI's security and header parameters, which it would
solve one by one on every request; the document adds what those would have documented: the
security schemes, and on every operation of a route with one of those dependencies its
security requirements and, for the tenant ones, the `X-Org-ID` parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from copy import deepcopy
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from onionskin.server.auth import SECURITY_SCHEMES
from onionskin.server.errors import PROBLEM_JSON
from onionskin.server.tenancy import AUTHENTICATING, ORG_HEADER_PARAMETER, TENANT_DEPENDENCIES


def _problems_as_problem_json(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    """Every dependency of `dependant`, however deep (Any: a dependency's own types)."""
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _document_authentication(document: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    security: list[dict[str, list[str]]] = [{scheme.scheme_name: []} for scheme in SECURITY_SCHEMES]
    secured = False
    # The routes as `get_openapi` walks them (included routers' routes with their prefix
    # and their router's dependencies).
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        calls = set(_calls(route.dependant))
        authenticates = not calls.isdisjoint(AUTHENTICATING)
        tenant = not calls.isdisjoint(TENANT_DEPENDENCIES)
        operations = document["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            if tenant:
                operation.setdefault("parameters", []).append(deepcopy(ORG_HEADER_PARAMETER))
            if authenticates:
                operation.setdefault("security", []).extend(deepcopy(security))
                secured = True
    if secured:
        document.setdefault("components", {}).setdefault("securitySchemes", {}).update(
            {
                scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
                for scheme in SECURITY_SCHEMES
            }
        )


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for `app.openapi`: errors as problem+json, authentication (JSON: Any)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _document_authentication(document, app.routes)
            _problems_as_problem_json(document)
            app.openapi_schema = document
        return app.openapi_schema

    return openapi
