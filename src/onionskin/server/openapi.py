"""The OpenAPI document, with every error response as `application/problem+json`.

FastAPI documents a response model under `application/json`; the error answers are really
`application/problem+json` (RFC 9457), so the document says so: a client generated from
it, or a schema-based test, then expects what the server sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from onionskin.server.errors import PROBLEM_JSON


def _problems_as_problem_json(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for `app.openapi` that documents errors as problem+json (JSON: Any)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _problems_as_problem_json(document)
            app.openapi_schema = document
        return app.openapi_schema

    return openapi
