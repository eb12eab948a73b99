from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from onionskin import (
    BudgetExceededError,
    CallLimitExceededError,
    CircuitOpenError,
    EmptyModelResponseError,
    GuardError,
    GuardStoreError,
    GuardTimeoutError,
    HallucinationError,
    InvalidInputError,
    MaxStepsExceededError,
    ModelHTTPError,
    OnionskinError,
    PromptVariableError,
    RateLimitExceededError,
    StopProcessing,
)
from onionskin.core import errors


def test_every_public_error_derives_from_one_root() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert StopProcessing in classes
    for cls in classes:
        if cls is not StopProcessing:
            assert issubclass(cls, OnionskinError), cls


def test_stop_processing_is_a_signal_outside_the_error_tree() -> None:
    assert not issubclass(StopProcessing, Exception)
    assert StopProcessing("done").response == "done"


@pytest.mark.parametrize(
    "error",
    [
        PromptVariableError("customer", "support"),
        MaxStepsExceededError("support", 3),
        EmptyModelResponseError("support", "gpt"),
        StopProcessing({"reason": "auth"}),
        GuardError("refused"),
        RateLimitExceededError("tenant:acme", 1.5),
        CircuitOpenError("tool:fetch", 3.0),
        BudgetExceededError(
            "acme", scope="run", key="k", limit=Decimal("1.00"), spent=Decimal("0.99")
        ),
        GuardTimeoutError("tool 'fetch'", 2.0),
        CallLimitExceededError("model", 5),
        HallucinationError("unsupported", kind="unsupported_value", values=("ORD-1",)),
        InvalidInputError("bad", errors=(("address.zip", "required"),)),
        GuardStoreError("rate_limiter", "connection refused"),
        ModelHTTPError("429 Too Many Requests", status_code=429, retry_after=2.0),
    ],
)
def test_errors_survive_pickling(error: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_messages_say_what_was_wrong_and_what_to_do() -> None:
    message = str(PromptVariableError("customer", "support"))
    assert "'customer'" in message
    assert "'support'" in message
    assert "state" in message
    message = str(MaxStepsExceededError("support", 3))
    assert "3" in message
    assert "max_steps" in message


def test_budget_error_names_the_budget_and_the_amounts() -> None:
    message = str(
        BudgetExceededError(
            "acme",
            scope="tenant",
            limit=Decimal("500.00"),
            spent=Decimal("499.90"),
            requested=Decimal("0.25"),
        )
    )
    assert "tenant budget of tenant 'acme'" in message
    assert "$500.00" in message
    assert "$499.90" in message
    assert "$0.25" in message
    assert "would be exceeded" in str(BudgetExceededError())


def test_store_error_of_a_fail_closed_guard_says_how_to_fail_open() -> None:
    message = str(GuardStoreError("budget", "connection refused"))
    assert "budget" in message
    assert "fail_open=True" in message
