"""Provider failures: Retry-After parsing, the HTTP error's message and fields, lost connections."""

from __future__ import annotations

import pickle
from email.utils import formatdate

import pytest

from onionskin import ModelError, ModelHTTPError
from onionskin.middleware._transient import is_transient
from onionskin.runtime.models._provider_errors import (
    ModelConnectionError,
    connection_error,
    retry_after_seconds,
    status_error,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": formatdate(NOW + 45, usegmt=True)}, 45.0),
        ({"retry-after": formatdate(NOW - 45, usegmt=True)}, 0.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:14:20 -0000"}, 60.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "next tuesday"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_as_seconds_milliseconds_or_an_http_date(
    headers: dict[str, str], seconds: float | None
) -> None:
    found = retry_after_seconds(headers, NOW)

    assert found == (None if seconds is None else max(seconds, 0.0))


def test_a_status_error_carries_status_and_wait_and_says_what_to_do() -> None:
    error = status_error(
        provider="openai",
        model="gpt-4o-mini",
        status=429,
        detail="slow down",
        headers={"retry-after": "7"},
        now=NOW,
    )

    assert isinstance(error, ModelHTTPError)
    assert (error.status_code, error.retry_after) == (429, 7.0)
    assert "HTTP 429: slow down" in str(error)
    assert "retry after 7 s" in str(error)
    assert "RetryMiddleware" in str(error)


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "API key"), (404, "model name"), (502, "transient"), (418, "see")]
)
def test_a_status_error_hints_at_the_fix(status: int, hint: str) -> None:
    error = status_error(
        provider="anthropic", model="m", status=status, detail="no", headers={}, now=NOW
    )

    assert hint in str(error)
    assert error.retry_after is None


def test_a_connection_error_is_a_transient_model_error_that_survives_pickling() -> None:
    error = connection_error(
        provider="openai", model="m", url="http://127.0.0.1:9/v1", detail="refused", timed_out=True
    )

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, ModelConnectionError)
    assert isinstance(copy, ModelError)
    assert is_transient(copy)
    assert "timed out" in str(copy)
    assert str(copy) == str(error)
