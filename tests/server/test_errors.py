"""The status of every onionskin error, and which messages a client may see."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from onionskin import (
    ApprovalRequiredError,
    AuthenticationError,
    CallLimitExceededError,
    CircuitOpenError,
    ConfigError,
    GuardStoreError,
    GuardTimeoutError,
    HallucinationError,
    InvalidInputError,
    MaxStepsExceededError,
    StoreError,
    TenantError,
    ToolError,
)
from onionskin.server.errors import problem_for, problem_response, public_error
from onionskin.server.tenancy import RoleRequiredError


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TenantError("two tenants"), 403, "forbidden"),
        (RoleRequiredError("admin"), 403, "forbidden"),
        (CallLimitExceededError("model", 5), 429, "call_limit_exceeded"),
        (GuardTimeoutError("the model call", 3), 504, "timeout"),
        (
            HallucinationError("no source says 42", kind="unsupported_value"),
            502,
            "unsupported_answer",
        ),
        (InvalidInputError("bad", errors=(("zip", "too short"),)), 422, "invalid_input"),
    ],
)
def test_refusals_keep_their_message(error: Exception, status: int, code: str) -> None:
    problem = problem_for(error)

    assert (problem.status, problem.code, problem.detail) == (status, code, str(error))
    assert problem.public


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StoreError("sqlite:////srv/secret.db is locked"), 503),
        (GuardStoreError("rate_limiter", "redis://:pw@cache:6379 refused"), 503),
        (ToolError("tool crashed reading /etc/app.env"), 500),
        (MaxStepsExceededError("assistant", 10), 500),
        (ConfigError("a middleware was misbuilt with key=abc"), 500),
        (KeyError("internal"), 500),
    ],
)
def test_internal_errors_get_a_generic_detail(error: Exception, status: int) -> None:
    problem = problem_for(error)

    assert problem.status == status
    assert not problem.public
    assert str(error) not in problem.detail
    assert "try again later" in problem.detail or "request id" in problem.detail


def test_authentication_never_says_why() -> None:
    problem = problem_for(AuthenticationError("the token expired at 12:00"))

    assert (problem.status, problem.detail) == (401, "invalid or missing credentials")
    assert problem.headers == {"WWW-Authenticate": "Bearer"}


def test_a_circuit_open_says_when_to_retry() -> None:
    problem = problem_for(CircuitOpenError("model:gpt", 0.2))

    assert problem.status == 503
    assert problem.headers == {"Retry-After": "1"}  # whole seconds, at least one


def test_extension_members_carry_the_approval_and_the_field_errors() -> None:
    approval = problem_for(
        ApprovalRequiredError("acme", approval_id="ap-1", limit=Decimal(5), spent=Decimal(5))
    )
    invalid = problem_for(InvalidInputError("bad", errors=(("items.2.qty", "must be > 0"),)))

    assert (approval.status, approval.extra) == (402, {"approval_id": "ap-1"})
    assert invalid.extra == {"errors": [{"path": "items.2.qty", "message": "must be > 0"}]}


def test_the_response_is_problem_json_with_the_extensions() -> None:
    response = problem_response(
        problem_for(ApprovalRequiredError("acme", approval_id="ap-1")), request_id="r-1"
    )

    assert response.status_code == 402
    assert response.media_type == "application/problem+json"
    body = json.loads(bytes(response.body))
    assert body["type"] == "about:blank"
    assert body["title"] == "Payment Required"
    assert (body["code"], body["approval_id"], body["request_id"]) == (
        "approval_required",
        "ap-1",
        "r-1",
    )


def test_failed_calls_show_public_messages_only() -> None:
    assert public_error("BudgetExceededError", "over budget") == "over budget"
    assert public_error("OperationalError", "password=hunter2") == "the call failed"
