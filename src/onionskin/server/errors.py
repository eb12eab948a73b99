"""Every error the HTTP API answers, as RFC 9457 problem+json, and its HTTP status.

The one place that maps onionskin's errors to statuses (STYLE 7). A refusal the caller can
act on keeps its message (a budget, a rate limit, a tenant conflict); anything else (a
store, a model provider, a bug) gets a generic detail and the request id, so that no
internal detail (a database URL, a provider's answer, a traceback) reaches the client.

| status | errors |
|---|---|
| 400 | malformed JSON, a run state missing a prompt's `{var}` (`PromptVariableError`) |
| 401 | `AuthenticationError` (always the same detail) |
| 402 | `BudgetExceededError`, `ApprovalRequiredError` (with `approval_id`) |
| 403 | `TenantError`: missing, malformed or conflicting tenant, a role not allowed |
| 404 | an unknown route or pipeline (`UnknownAgentError`), `ApprovalNotFoundError` |
| 409 | `ApprovalDecidedError`: the request was decided already |
| 413 | a body over the limit |
| 422 | an invalid body, `InvalidInputError` (with `errors`) |
| 429 | `RateLimitExceededError`, `CallLimitExceededError`, other guard refusals (Retry-After) |
| 502 | `ModelError` (generic detail), `HallucinationError` |
| 503 | `StoreError` (generic detail), `CircuitOpenError` (Retry-After) |
| 504 | `GuardTimeoutError` |
| 500 | anything else (generic detail) |

Over 200 lines: STYLE keeps every status decision in this one module, the handlers of
FastAPI's own errors (400, 404, 413, 422) included.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from onionskin.core.errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ApprovalRequiredError,
    AuthenticationError,
    BudgetExceededError,
    CallLimitExceededError,
    CircuitOpenError,
    GuardError,
    GuardStoreError,
    GuardTimeoutError,
    HallucinationError,
    InvalidInputError,
    ModelError,
    ModelHTTPError,
    OnionskinError,
    PromptVariableError,
    RateLimitExceededError,
    StoreError,
    TenantError,
)
from onionskin.project import UnknownAgentError
from onionskin.server.auth import INVALID_CREDENTIALS

logger = logging.getLogger("onionskin.server")

PROBLEM_JSON = "application/problem+json"

# (error type, status, code, whether its message may be shown); the first match wins.
_RULES: tuple[tuple[type[BaseException], int, str, bool], ...] = (
    (AuthenticationError, 401, "unauthenticated", False),
    (TenantError, 403, "forbidden", True),
    (UnknownAgentError, 404, "unknown_pipeline", True),
    (PromptVariableError, 400, "missing_state", True),
    (ApprovalRequiredError, 402, "approval_required", True),
    (BudgetExceededError, 402, "budget_exceeded", True),
    (RateLimitExceededError, 429, "rate_limited", True),
    (CallLimitExceededError, 429, "call_limit_exceeded", True),
    (CircuitOpenError, 503, "circuit_open", True),
    (GuardTimeoutError, 504, "timeout", True),
    (InvalidInputError, 422, "invalid_input", True),
    (HallucinationError, 502, "unsupported_answer", True),
    (GuardStoreError, 503, "guard_store_unavailable", False),
    (GuardError, 429, "refused", True),
    # Before StoreError, their base: the answer says what the caller asked about.
    (ApprovalNotFoundError, 404, "not_found", True),
    (ApprovalDecidedError, 409, "conflict", True),
    (StoreError, 503, "store_unavailable", False),
    (ModelError, 502, "model_failed", False),
)
_GENERIC = {
    401: INVALID_CREDENTIALS,
    500: "the server could not complete the request; quote its request id when reporting it",
    502: "the model provider failed; try again later",
    503: "a store the run needs is unavailable; try again later",
}
_PUBLIC_NAMES = frozenset(rule[0].__name__ for rule in _RULES if rule[3])


class ProblemDetails(BaseModel):
    """An error answer (RFC 9457), with onionskin's extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    """The HTTP status phrase."""
    status: int
    detail: str
    """What was wrong and what to do."""
    code: str
    """A stable, machine-readable name of the problem (`budget_exceeded`, ...)."""
    request_id: str | None = None
    """The request's id (also the `X-Request-ID` header), when it got one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """How an error is answered: status, code, detail, headers and extension members."""

    status: int
    code: str
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Extension members (JSON values: Any)."""
    public: bool = True
    """False when `detail` is a generic line standing in for the error's own message."""


def _retry_after(error: BaseException) -> dict[str, str]:
    seconds = getattr(error, "retry_after", None)
    if isinstance(seconds, int | float) and seconds >= 0:
        return {"Retry-After": str(max(1, math.ceil(seconds)))}
    return {}


def problem_for(error: BaseException) -> Problem:
    """The problem that answers `error` (500 with a generic detail for unknown errors)."""
    status, code, public = next(
        ((s, c, p) for kind, s, c, p in _RULES if isinstance(error, kind)),
        (500, "internal_error", False),
    )
    detail = str(error) if public else _GENERIC.get(status, _GENERIC[500])
    if isinstance(error, UnknownAgentError):
        detail = f"no pipeline or agent named {error.name!r} in this project"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status in (429, 503) or isinstance(error, ModelHTTPError):
        headers.update(_retry_after(error))
    extra: dict[str, Any] = {}
    if isinstance(error, ApprovalRequiredError):
        extra["approval_id"] = error.approval_id
    if isinstance(error, InvalidInputError) and error.errors:
        extra["errors"] = [{"path": path, "message": text} for path, text in error.errors]
    return Problem(
        status=status, code=code, detail=detail, headers=headers, extra=extra, public=public
    )


def is_public(error_type: str) -> bool:
    """True when errors of the type named `error_type` may show their message to a client."""
    return error_type in _PUBLIC_NAMES


def public_error(error_type: str, message: str) -> str:
    """The text of a failed call that a client may see: its message, or a generic line."""
    return message if is_public(error_type) else "the call failed"


def problem_response(problem: Problem, *, request_id: str | None = None) -> JSONResponse:
    """`problem` as an `application/problem+json` response."""
    body = ProblemDetails(
        title=HTTPStatus(problem.status).phrase,
        status=problem.status,
        detail=problem.detail,
        code=problem.code,
        request_id=request_id,
        **problem.extra,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=dict(problem.headers),
        media_type=PROBLEM_JSON,
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _code(status: int) -> str:
    if status == 413:  # the phrase is "Request Entity Too Large": say what is too large
        return "body_too_large"
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, HTTPException):  # pragma: no cover - registered for it only
        raise error
    problem = Problem(
        status=error.status_code,
        code=_code(error.status_code),
        detail=str(error.detail),
        headers=error.headers or {},
    )
    return problem_response(problem, request_id=_request_id(request))


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RequestValidationError):  # pragma: no cover - registered for it
        raise error
    found = error.errors()
    if any(item.get("type") == "json_invalid" for item in found):
        problem = Problem(status=400, code="malformed_json", detail="the body is not valid JSON")
    else:
        errors = [
            {"path": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
            for item in found
        ]
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        problem = Problem(
            status=422, code="invalid_request", detail=detail, extra={"errors": errors}
        )
    return problem_response(problem, request_id=_request_id(request))


async def _onionskin_error(request: Request, error: Exception) -> JSONResponse:
    problem = problem_for(error)
    if problem.status >= 500:
        logger.error("request %s failed", _request_id(request), exc_info=error)
    return problem_response(problem, request_id=_request_id(request))


def install_problem_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, invalid requests, onionskin errors and bugs with problem+json."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OnionskinError, _onionskin_error)
    # A bug: answered without detail (Starlette then re-raises it for the server's log).
    app.add_exception_handler(Exception, _onionskin_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting `statuses` as problem+json."""
    return {
        status: {"model": ProblemDetails, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
