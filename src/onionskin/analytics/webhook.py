"""`WebhookAnalyticsExporter`: analytics batches POSTed as JSON to an HTTP endpoint.

Each batch is one request, `{"events": [...]}`, with these headers:

- `X-Onionskin-Batch-Id`: unique per batch, so the receiver can drop a repeat.
- `X-Onionskin-Timestamp`: Unix seconds when the batch was sent.
- `X-Onionskin-Signature`: with a secret, `sha256=` and the hex HMAC-SHA256 of
  `"{timestamp}.{body}"`, so the receiver knows the sender and can refuse an old replay
  ([verify_signature][onionskin.analytics.webhook.verify_signature] checks both).

A failure (no connection, a timeout, a non-2xx answer) is reported in the `ExportResult`,
never raised: analytics never fail a run.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

try:
    import httpx2
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'the webhook exporter needs httpx2: pip install "onionskin[server]"'
    ) from error

from onionskin.analytics._checks import seconds
from onionskin.analytics.events import AnalyticsEvent
from onionskin.analytics.exporter import BaseAnalyticsExporter, ExportResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError
from onionskin.core.ids import new_id

SIGNATURE_HEADER = "X-Onionskin-Signature"
TIMESTAMP_HEADER = "X-Onionskin-Timestamp"
BATCH_HEADER = "X-Onionskin-Batch-Id"


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`: `sha256=<hex>`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """For receivers: True when `body` was signed with `secret` less than `tolerance` s ago.

    `headers` are the request's headers, looked up case-insensitively.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _check_url(url: object) -> str:
    try:
        parsed = httpx2.URL(url) if isinstance(url, str) else None
    except httpx2.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"WebhookAnalyticsExporter.url must be an http(s) URL, got {url!r}")
    return str(url)


class WebhookAnalyticsExporter(BaseAnalyticsExporter):
    """POSTs each batch of analytics events as JSON to `url`, signed when given a secret.

    Args:
        url: the endpoint (http or https).
        secret: the HMAC-SHA256 key shared with the receiver; None sends unsigned batches.
        timeout: seconds a request may take (connect, send and answer).
        headers: extra request headers (an API key, say).
        transport: an httpx2 transport (tests, proxies); the default opens real connections.
        clock: the time in the timestamp header.

    Raises:
        ConfigError: a bad URL, secret or timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.url = _check_url(url)
        key: object = secret  # object: checked here, whatever the caller passed
        if key is not None and (not isinstance(key, str | bytes) or not key):
            raise ConfigError("WebhookAnalyticsExporter.secret must be a non-empty str or bytes")
        seconds_ = seconds("WebhookAnalyticsExporter.timeout", timeout)
        self._secret = secret
        self._clock = clock
        self._client = httpx2.AsyncClient(
            transport=transport, timeout=seconds_, headers=dict(headers or {})
        )

    def _headers(self, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock.time()))
        headers = {
            "Content-Type": "application/json",
            BATCH_HEADER: new_id(),
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return headers

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """POST `events` as one JSON batch; a failure is reported, never raised."""
        if not events:
            return ExportResult(success=True, exported_count=0)
        body = b'{"events":[' + b",".join(e.model_dump_json().encode() for e in events) + b"]}"
        try:
            response = await self._client.post(self.url, content=body, headers=self._headers(body))
        except httpx2.HTTPError as error:
            return ExportResult(
                success=False, exported_count=0, error=f"{type(error).__name__}: {error}"
            )
        if not response.is_success:
            return ExportResult(
                success=False,
                exported_count=0,
                error=f"the webhook answered HTTP {response.status_code}",
            )
        return ExportResult(success=True, exported_count=len(events))

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()
