"""Which errors are worth trying again, and when: shared by retry and model fallback."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

from onionskin.core.errors import (
    ConfigError,
    GuardTimeoutError,
    ModelHTTPError,
    RateLimitExceededError,
)

ErrorFilter: TypeAlias = (
    Callable[[BaseException], bool] | type[BaseException] | tuple[type[BaseException], ...]
)
"""Which errors a guard acts on: a predicate, an exception class, or a tuple of them."""

TRANSIENT_STATUS_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""HTTP statuses that say "try again later": timeouts, conflicts, throttling, server errors
(529: Anthropic's "overloaded")."""

_TRANSIENT_TYPES = (TimeoutError, ConnectionError, GuardTimeoutError, RateLimitExceededError)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is likely to go away if the call is made again a little later.

    True for a `ModelHTTPError` whose status is in `TRANSIENT_STATUS_CODES`, for
    `TimeoutError`, `ConnectionError`, `GuardTimeoutError` and `RateLimitExceededError`.
    False for everything else, notably `CircuitOpenError` and `BudgetExceededError` (retrying
    cannot help before they clear), `InvalidInputError` (the same input fails again), and
    `StopProcessing` or a cancellation, which are not failures at all.
    """
    if isinstance(error, ModelHTTPError):
        return error.status_code in TRANSIENT_STATUS_CODES
    return isinstance(error, _TRANSIENT_TYPES)


def retry_after(error: BaseException | None) -> float | None:
    """The seconds `error` asks to wait (its `retry_after`), when that is a usable number."""
    value = getattr(error, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(float(value), 0.0)


def error_predicate(owner: str, field: str, value: object) -> Callable[[BaseException], bool]:
    """Turn an `ErrorFilter` config value into a predicate; `ConfigError` naming the field.

    Only `Exception`s ever match: `StopProcessing`, `asyncio.CancelledError` and the other
    bare `BaseException`s steer the program and are never retried or redirected.
    """
    if isinstance(value, type) and issubclass(value, BaseException):
        value = (value,)
    if isinstance(value, tuple):
        if not value or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in value
        ):
            raise ConfigError(
                f"{owner}.{field} must be a predicate, an exception class or a non-empty tuple "
                f"of exception classes, got {value!r}"
            )
        classes: tuple[type[BaseException], ...] = value
        return lambda error: isinstance(error, Exception) and isinstance(error, classes)
    if callable(value):
        predicate: Callable[[BaseException], bool] = value
        return lambda error: isinstance(error, Exception) and bool(predicate(error))
    raise ConfigError(
        f"{owner}.{field} must be a predicate, an exception class or a tuple of exception "
        f"classes, got {value!r}"
    )
