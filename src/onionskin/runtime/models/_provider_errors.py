"""Provider failures as onionskin errors: HTTP statuses with their Retry-After, lost connections.

The SDKs' own retries are off (onionskin's `RetryMiddleware` owns retrying), so the wait a
provider asks for must reach that middleware: `ModelHTTPError.retry_after`, read here from
`retry-after-ms` or `Retry-After` (seconds or an HTTP date). The SDKs parse these headers
too, but in private client methods that read the real time; this reads the injected clock's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

from onionskin.core.errors import ModelError, ModelHTTPError


class ModelConnectionError(ModelError, ConnectionError):
    """The provider could not be reached, or the connection dropped or timed out.

    It is also a `ConnectionError`, so `RetryMiddleware` (by default) retries it as transient.
    """


_HINTS = {
    400: "the provider refused the request: check the model settings, tools and messages",
    401: "check the API key",
    403: "check the API key and what it is allowed to use",
    404: "check the model name and the base_url",
    413: "the request is too large: send fewer or smaller messages",
    422: "the provider refused the request: check the model settings, tools and messages",
    429: "the provider is rate limiting: RetryMiddleware retries it after the wait it asks for",
    529: "the provider is overloaded: try again later or use a FallbackMiddleware",
}
_TRANSIENT_HINT = "a transient failure: RetryMiddleware retries it"


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The wait a response asks for, in seconds; None when it names none (or nothing valid).

    Reads `retry-after-ms` (OpenAI's and Anthropic's precise form) first, then `Retry-After`
    as seconds or as an HTTP date, measured from `now` (Unix seconds). `headers` must look
    names up case-insensitively, as httpx's do.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None and (value := _seconds(milliseconds)) is not None:
        return value / 1000
    header = headers.get("retry-after")
    if header is None:
        return None
    if (value := _seconds(header)) is not None:
        return value
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def status_error(
    *, provider: str, model: str, status: int, detail: str, headers: Mapping[str, str], now: float
) -> ModelHTTPError:
    """The `ModelHTTPError` for an HTTP error answer, with its Retry-After in `retry_after`."""
    after = retry_after_seconds(headers, now)
    hint = _HINTS.get(status) or (_TRANSIENT_HINT if status >= 500 else "see the message")
    wait = "" if after is None else f"; it asks to retry after {after:g} s"
    return ModelHTTPError(
        f"{provider} model {model!r} answered HTTP {status}: {detail}{wait}; {hint}",
        status_code=status,
        retry_after=after,
    )


def connection_error(
    *, provider: str, model: str, url: str, detail: str, timed_out: bool
) -> ModelConnectionError:
    """The error for a request that got no answer: unreachable, dropped or timed out."""
    what = "timed out" if timed_out else "could not connect or lost the connection"
    return ModelConnectionError(
        f"{provider} model {model!r}: the request to {url} {what} ({detail}); check that the "
        "server is up and the base_url is right (RetryMiddleware retries this as transient)"
    )
