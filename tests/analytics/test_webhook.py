"""WebhookAnalyticsExporter on a local HTTP endpoint: signed JSON batches, failures reported."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator

import httpx2
import pytest

from onionskin import ConfigError
from onionskin.analytics import AnalyticsCoordinator
from onionskin.analytics.webhook import WebhookAnalyticsExporter, verify_signature
from onionskin.testing import FakeClock
from tests.analytics._webhook_server import WebhookServer
from tests.analytics.conftest import EventFactory

SECRET = "whsec_test_123"


@pytest.fixture
def endpoint() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


async def test_a_batch_is_posted_as_signed_json(
    endpoint: WebhookServer, make_event: EventFactory
) -> None:
    clock = FakeClock(start=1_767_225_600.0)
    exporter = WebhookAnalyticsExporter(endpoint.url, secret=SECRET, clock=clock)
    events = [make_event("acme", "token_usage", total_tokens=42), make_event("acme", n=2)]
    async with exporter:
        result = await exporter.export(events)

    assert (result.success, result.exported_count, result.error) == (True, 2, None)
    [request] = endpoint.received
    assert request.path == "/hooks/analytics"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-onionskin-timestamp"] == "1767225600"
    # The receiver's own check, written out: HMAC-SHA256 over "timestamp.body".
    expected = hmac.new(SECRET.encode(), b"1767225600." + request.body, hashlib.sha256)
    assert request.headers["x-onionskin-signature"] == "sha256=" + expected.hexdigest()
    document = json.loads(request.body)
    assert [e["id"] for e in document["events"]] == [e.id for e in events]
    assert document["events"][0]["data"] == {"total_tokens": 42}
    assert request.headers["x-onionskin-batch-id"]


async def test_the_receiver_helper_verifies_and_refuses(
    endpoint: WebhookServer, make_event: EventFactory
) -> None:
    clock = FakeClock(start=1_767_225_600.0)
    async with WebhookAnalyticsExporter(endpoint.url, secret=SECRET, clock=clock) as exporter:
        await exporter.export([make_event("acme")])
    [request] = endpoint.received
    now = clock.time()

    assert verify_signature(SECRET, request.body, request.headers, now=now)
    assert not verify_signature("wrong", request.body, request.headers, now=now)
    assert not verify_signature(SECRET, request.body + b" ", request.headers, now=now)
    assert not verify_signature(SECRET, request.body, request.headers, now=now + 301)
    assert not verify_signature(SECRET, request.body, {}, now=now)


async def test_without_a_secret_batches_are_unsigned(
    endpoint: WebhookServer, make_event: EventFactory
) -> None:
    async with WebhookAnalyticsExporter(endpoint.url, headers={"X-Api-Key": "k1"}) as exporter:
        await exporter.export([make_event("acme")])

    [request] = endpoint.received
    assert "x-onionskin-signature" not in request.headers
    assert request.headers["x-api-key"] == "k1"


@pytest.mark.parametrize("status", [400, 500, 503])
async def test_a_non_2xx_answer_is_a_failed_export(
    endpoint: WebhookServer, make_event: EventFactory, status: int
) -> None:
    endpoint.statuses.append(status)
    async with WebhookAnalyticsExporter(endpoint.url, secret=SECRET) as exporter:
        result = await exporter.export([make_event("acme")])

    assert (result.success, result.exported_count) == (False, 0)
    assert result.error == f"the webhook answered HTTP {status}"


async def test_an_unreachable_endpoint_is_reported_not_raised(make_event: EventFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    async with WebhookAnalyticsExporter(f"http://127.0.0.1:{port}/hook", timeout=2) as exporter:
        result = await exporter.export([make_event("acme")])

    assert not result.success
    assert result.error is not None
    assert "ConnectError" in result.error


async def test_transport_errors_through_the_coordinator_are_counted(
    make_event: EventFactory,
) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("too slow", request=request)

    exporter = WebhookAnalyticsExporter(
        "https://hooks.example.com/a", transport=httpx2.MockTransport(refuse)
    )
    coordinator = AnalyticsCoordinator([exporter])
    coordinator.record(make_event("acme"))
    await coordinator.flush()
    await exporter.aclose()

    [stats] = coordinator.stats()
    assert (stats.failed_batches, stats.exported) == (1, 0)


async def test_an_empty_batch_sends_nothing(endpoint: WebhookServer) -> None:
    async with WebhookAnalyticsExporter(endpoint.url) as exporter:
        result = await exporter.export([])
    assert (result.success, result.exported_count) == (True, 0)
    assert endpoint.received == []


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("ftp://example.com/x", {}, "url"),
        ("not a url", {}, "url"),
        ("https://", {}, "url"),
        ("https://example.com", {"secret": ""}, "secret"),
        ("https://example.com", {"secret": 42}, "secret"),
        ("https://example.com", {"timeout": 0}, "timeout"),
        ("https://example.com", {"timeout": float("inf")}, "timeout"),
    ],
)
def test_bad_options_are_refused_by_name(url: str, options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"WebhookAnalyticsExporter.{field}"):
        WebhookAnalyticsExporter(url, **options)  # type: ignore[arg-type]  # the point
