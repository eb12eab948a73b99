"""Bad requests: oversized bodies (declared or chunked), malformed JSON, invalid fields."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from tests.server.conftest import Serve, Served, acme, settings

URL = "/api/v1/pipelines/echo/execute"
LIMIT = 256


@pytest.fixture
async def small(serve: Serve) -> Served:
    return await serve(settings(max_body_bytes=LIMIT))


def body_of(size: int) -> bytes:
    """A valid execute body of exactly `size` bytes."""
    empty = json.dumps({"input": ""}).encode()
    return json.dumps({"input": "x" * (size - len(empty))}).encode()


def assert_problem(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"]
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_a_body_at_the_limit_is_accepted(small: Served) -> None:
    response = await small.client.post(
        URL, content=body_of(LIMIT), headers={**acme(), "Content-Type": "application/json"}
    )

    assert response.status_code == 200


async def test_a_declared_length_over_the_limit_is_refused(small: Served) -> None:
    response = await small.client.post(
        URL, content=body_of(LIMIT + 1), headers={**acme(), "Content-Type": "application/json"}
    )

    assert_problem(response, 413, "body_too_large")
    assert f"limit of {LIMIT} bytes" in response.json()["detail"]


async def test_a_chunked_body_over_the_limit_is_refused_while_read(small: Served) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        payload = body_of(LIMIT * 10)
        for start in range(0, len(payload), 100):
            sent.append(start)
            yield payload[start : start + 100]

    response = await small.client.post(
        URL, content=chunks(), headers={**acme(), "Content-Type": "application/json"}
    )

    assert_problem(response, 413, "body_too_large")
    assert len(sent) < 10  # refused once past the limit, not after reading it all


async def test_a_chunked_body_within_the_limit_is_accepted(small: Served) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        payload = body_of(LIMIT)
        yield payload[:100]
        yield payload[100:]

    response = await small.client.post(
        URL, content=chunks(), headers={**acme(), "Content-Type": "application/json"}
    )

    assert response.status_code == 200


async def test_an_oversized_body_is_refused_before_credentials_are_checked(small: Served) -> None:
    response = await small.client.post(URL, content=body_of(LIMIT * 2))

    assert response.status_code == 413


@pytest.mark.parametrize("payload", [b"{", b'{"input": "hi"', b"not json", b'{"input": "hi"}}'])
async def test_malformed_json_is_400(served: Served, payload: bytes) -> None:
    response = await served.client.post(
        URL, content=payload, headers={**acme(), "Content-Type": "application/json"}
    )

    assert_problem(response, 400, "malformed_json")


async def test_a_body_that_is_not_utf8_is_400(served: Served) -> None:
    response = await served.client.post(
        URL, content=b'{"input": "\xff"}', headers={**acme(), "Content-Type": "application/json"}
    )

    assert_problem(response, 400, "bad_request")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "body.input"),
        ({"input": 42}, "body.input"),
        ({"input": "hi", "stream": "yes"}, "body.stream"),
        ({"input": "hi", "state": []}, "body.state"),
        ({"input": "hi", "surprise": 1}, "body.surprise"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    served: Served, body: dict[str, object], path: str
) -> None:
    response = await served.client.post(URL, json=body, headers=acme())

    assert_problem(response, 422, "invalid_request")
    assert any(error["path"].startswith(path) for error in response.json()["errors"])


async def test_a_body_that_is_not_json_at_all_is_refused(served: Served) -> None:
    response = await served.client.post(
        URL, content=b"input=hi", headers={**acme(), "Content-Type": "text/plain"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_routes_and_methods_answer_problem_json(served: Served) -> None:
    missing = await served.client.get("/api/v1/nothing", headers=acme())
    wrong_method = await served.client.get(URL, headers=acme())

    assert_problem(missing, 404, "not_found")
    assert_problem(wrong_method, 405, "method_not_allowed")


async def test_a_plain_client_request_id_is_kept_and_others_replaced(served: Served) -> None:
    kept = await served.client.get("/api/v1/nothing", headers={"X-Request-ID": "gw.1-a_B"})
    replaced = await served.client.get("/api/v1/nothing", headers={"X-Request-ID": "a b\tc"})

    assert kept.headers["X-Request-ID"] == "gw.1-a_B"
    assert replaced.headers["X-Request-ID"] not in ("a b\tc", "")
    assert replaced.json()["request_id"] == replaced.headers["X-Request-ID"]
