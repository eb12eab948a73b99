"""JWT authentication with a shared secret (HS256), and the attacks it must refuse."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import pytest
from tests.server.conftest import SECRET, Serve, Served, bearer, settings, token

URL = "/api/v1/pipelines/echo/execute"
CLAIMS = {"org_id": "acme", "org_role": "admin", "sub": "alice"}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """A token with `alg` none (or any alg) and no signature, as an attacker would forge it."""
    payload = {"exp": int(time.time()) + 300, **claims}
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(payload)}."


def assert_refused(response: httpx2.Response) -> None:
    """401, problem+json, and the same generic detail whatever the reason."""
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["detail"] == "invalid or missing credentials"
    assert body["code"] == "unauthenticated"
    for word in ("expired", "signature", "algorithm", "audience", "issuer"):
        assert word not in response.text.lower()


async def post(served: Served, headers: dict[str, str]) -> httpx2.Response:
    return await served.client.post(URL, json={"input": "hi"}, headers=headers)


async def test_a_valid_token_is_accepted(served: Served) -> None:
    response = await post(served, bearer(token(CLAIMS)))

    assert response.status_code == 200
    assert response.json()["tenant_id"] == "acme"


async def test_no_credentials_are_refused(served: Served) -> None:
    assert_refused(await post(served, {}))


async def test_an_expired_token_is_refused(served: Served) -> None:
    assert_refused(await post(served, bearer(token(CLAIMS, expires_in=-120))))


async def test_a_token_just_expired_is_accepted_within_the_leeway(served: Served) -> None:
    response = await post(served, bearer(token(CLAIMS, expires_in=-5)))

    assert response.status_code == 200


async def test_a_token_without_exp_is_refused(served: Served) -> None:
    import jwt

    forged = jwt.encode(CLAIMS, SECRET, algorithm="HS256")

    assert_refused(await post(served, bearer(forged)))


async def test_a_token_not_yet_valid_is_refused(served: Served) -> None:
    assert_refused(await post(served, bearer(token({**CLAIMS, "nbf": int(time.time()) + 600}))))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(served: Served, alg: str) -> None:
    assert_refused(await post(served, bearer(unsigned(CLAIMS, alg))))


async def test_a_bad_signature_is_refused(served: Served) -> None:
    assert_refused(await post(served, bearer(token(CLAIMS, key="another-secret-" + "y" * 32))))


async def test_a_tampered_payload_is_refused(served: Served) -> None:
    header, _, signature = token(CLAIMS).split(".")
    forged = f"{header}.{_b64({**CLAIMS, 'org_id': 'globex', 'exp': 2**40})}.{signature}"

    assert_refused(await post(served, bearer(forged)))


async def test_an_algorithm_not_configured_is_refused(served: Served) -> None:
    """HS512 with the right secret: the server pins HS256."""
    assert_refused(await post(served, bearer(token(CLAIMS, algorithm="HS512"))))


@pytest.mark.parametrize("value", ["not-a-jwt.at.all", "a.b.c", "..", "e30.e30.e30"])
async def test_malformed_tokens_are_refused(served: Served, value: str) -> None:
    assert_refused(await post(served, bearer(value)))


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Token abc", "bearer"]
)
async def test_other_schemes_and_empty_tokens_are_refused(served: Served, header: str) -> None:
    assert_refused(await post(served, {"Authorization": header}))


@pytest.mark.parametrize("claim", ["org_id", "org_role", "sub"])
async def test_a_claim_that_is_not_a_string_is_refused(served: Served, claim: str) -> None:
    assert_refused(await post(served, bearer(token({**CLAIMS, claim: ["acme"]}))))


async def test_issuer_and_audience_are_checked_when_configured(serve: Serve) -> None:
    server = await serve(settings(jwt_issuer="https://idp.test", jwt_audience="onionskin"))
    good = {**CLAIMS, "iss": "https://idp.test", "aud": "onionskin"}

    accepted = await post(server, bearer(token(good)))
    wrong_issuer = await post(server, bearer(token({**good, "iss": "https://evil.test"})))
    wrong_audience = await post(server, bearer(token({**good, "aud": "another-api"})))
    no_issuer = await post(server, bearer(token({k: v for k, v in good.items() if k != "iss"})))
    no_audience = await post(server, bearer(token({k: v for k, v in good.items() if k != "aud"})))

    assert accepted.status_code == 200
    for refused in (wrong_issuer, wrong_audience, no_issuer, no_audience):
        assert_refused(refused)


async def test_a_token_with_an_audience_is_refused_when_none_is_configured(served: Served) -> None:
    """PyJWT's safe default: a token meant for some audience is not for an API that has none."""
    assert_refused(await post(served, bearer(token({**CLAIMS, "aud": "another-api"}))))


async def test_credentials_are_checked_before_the_body(served: Served) -> None:
    """An unauthenticated caller learns nothing about the pipeline or the body's schema."""
    unknown = await served.client.post(
        "/api/v1/pipelines/nope/execute", json={"input": "hi"}, headers=bearer("bad")
    )
    invalid = await served.client.post(URL, json={"wrong": 1}, headers={})

    assert_refused(unknown)
    assert_refused(invalid)
