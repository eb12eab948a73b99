"""RS256 / ES256 tokens checked with keys from a JWKS, fetched with httpx2 (a mock transport).

Also the key-confusion attack: an HS256 token signed with the provider's *public* key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tests.server.conftest import SECRET, Serve, Served, bearer, token

from onionskin.core.errors import ConfigError
from onionskin.server import JwksClient, ServerSettings
from onionskin.testing import FakeClock

JWKS_URL = "https://idp.test/.well-known/jwks.json"
URL = "/api/v1/pipelines/echo/execute"
CLAIMS = {"org_id": "acme", "org_role": "admin", "sub": "alice"}


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    other_key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
        other_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of a private key (Any: RSA or EC)."""
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", **extra}


@dataclass
class Provider:
    """A fake identity provider: serves `documents` in turn (the last one repeats)."""

    documents: list[Any]
    status: int = 200
    requests: list[httpx2.Request] = field(default_factory=list)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        document = self.documents[0] if len(self.documents) == 1 else self.documents.pop(0)
        return httpx2.Response(self.status, json=document)

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))


@pytest.fixture
def provider(keys: Keys) -> Provider:
    return Provider([{"keys": [jwk(keys.rsa_key, "rsa-1"), jwk(keys.ec_key, "ec-1")]}])


@pytest.fixture
async def jwks_served(serve: Serve, provider: Provider) -> Served:
    client = JwksClient(JWKS_URL, client=provider.client())
    return await serve(ServerSettings(jwt_jwks_url=JWKS_URL), jwks=client)


async def post(served: Served, value: str) -> httpx2.Response:
    return await served.client.post(URL, json={"input": "hi"}, headers=bearer(value))


async def test_rs256_and_es256_tokens_are_accepted(keys: Keys, jwks_served: Served) -> None:
    rs = token(CLAIMS, key=keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    es = token(CLAIMS, key=keys.ec_key, algorithm="ES256", headers={"kid": "ec-1"})

    for value in (rs, es):
        response = await post(jwks_served, value)
        assert response.status_code == 200
        assert response.json()["tenant_id"] == "acme"


async def test_keys_are_fetched_once_and_cached(
    keys: Keys, jwks_served: Served, provider: Provider
) -> None:
    for _ in range(3):
        value = token(CLAIMS, key=keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
        assert (await post(jwks_served, value)).status_code == 200

    assert len(provider.requests) == 1
    assert str(provider.requests[0].url) == JWKS_URL


async def test_a_token_signed_by_another_key_is_refused(keys: Keys, jwks_served: Served) -> None:
    forged = token(CLAIMS, key=keys.other_key, algorithm="RS256", headers={"kid": "rsa-1"})

    assert (await post(jwks_served, forged)).status_code == 401


async def test_a_key_of_another_type_than_the_algorithm_is_refused(
    keys: Keys, jwks_served: Served
) -> None:
    """An ES256 token naming the RSA key's kid: the key's type decides, not the token."""
    forged = token(CLAIMS, key=keys.ec_key, algorithm="ES256", headers={"kid": "rsa-1"})

    assert (await post(jwks_served, forged)).status_code == 401


async def test_an_hs256_token_signed_with_the_public_key_is_refused(
    keys: Keys, jwks_served: Served
) -> None:
    """The classic key confusion: the attacker signs HS256 with the public key's PEM."""
    public_pem = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _hs256_with(public_pem, CLAIMS, kid="rsa-1")

    assert (await post(jwks_served, forged)).status_code == 401


async def test_the_public_key_confusion_fails_with_a_secret_configured_too(
    keys: Keys, serve: Serve, provider: Provider
) -> None:
    """With both a secret and a JWKS, HS256 is checked with the secret only."""
    client = JwksClient(JWKS_URL, client=provider.client())
    server = await serve(ServerSettings(jwt_secret=SECRET, jwt_jwks_url=JWKS_URL), jwks=client)
    public_pem = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    forged = await post(server, _hs256_with(public_pem, CLAIMS, kid="rsa-1"))
    genuine = await post(server, token(CLAIMS))

    assert forged.status_code == 401
    assert genuine.status_code == 200
    assert provider.requests == []  # an HS256 token never makes the server fetch keys


def _hs256_with(secret: bytes, claims: dict[str, Any], *, kid: str) -> str:
    # PyJWT itself refuses a PEM as an HMAC secret, so the attacker signs by hand.
    import base64
    import hashlib
    import hmac
    import time

    def b64(data: dict[str, Any]) -> bytes:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    head = b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = b64({"exp": int(time.time()) + 300, **claims})
    signature = hmac.new(secret, head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


async def test_alg_none_is_refused_with_a_jwks(jwks_served: Served) -> None:
    forged = jwt.encode({**CLAIMS, "exp": 2**40}, "", algorithm="none")

    assert (await post(jwks_served, forged)).status_code == 401


async def test_a_rotated_key_is_fetched_for_an_unknown_kid(keys: Keys, serve: Serve) -> None:
    provider = Provider(
        [{"keys": [jwk(keys.rsa_key, "rsa-1")]}, {"keys": [jwk(keys.other_key, "rsa-2")]}]
    )
    clock = FakeClock()
    client = JwksClient(JWKS_URL, client=provider.client(), refetch_seconds=10, clock=clock)
    server = await serve(ServerSettings(jwt_jwks_url=JWKS_URL), jwks=client)

    old = await post(
        server, token(CLAIMS, key=keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    )
    clock.advance(10)
    new = await post(
        server, token(CLAIMS, key=keys.other_key, algorithm="RS256", headers={"kid": "rsa-2"})
    )

    assert (old.status_code, new.status_code) == (200, 200)
    assert len(provider.requests) == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(keys: Keys) -> None:
    provider = Provider([{"keys": [jwk(keys.rsa_key, "rsa-1")]}])
    clock = FakeClock()
    client = JwksClient(JWKS_URL, client=provider.client(), refetch_seconds=10, clock=clock)

    assert await client.key("rsa-1") is not None
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert await client.key(kid) is None
    clock.advance(10)
    assert await client.key("made-up-4") is None

    assert len(provider.requests) == 2  # the first fetch, and one refetch after 10 s


async def test_keys_are_refetched_when_the_cache_expires(keys: Keys) -> None:
    provider = Provider([{"keys": [jwk(keys.rsa_key, "rsa-1")]}])
    clock = FakeClock()
    client = JwksClient(JWKS_URL, client=provider.client(), cache_seconds=300, clock=clock)

    await client.key("rsa-1")
    clock.advance(299)
    await client.key("rsa-1")
    clock.advance(1)
    await client.key("rsa-1")

    assert len(provider.requests) == 2


@pytest.mark.parametrize(
    "document",
    [
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "rsa-1"}]},
        {"keys": []},
        {"nothing": "here"},
        ["not", "an", "object"],
    ],
)
async def test_a_jwks_without_usable_keys_refuses_every_token(
    keys: Keys, serve: Serve, document: Any
) -> None:
    provider = Provider([document])
    server = await serve(
        ServerSettings(jwt_jwks_url=JWKS_URL), jwks=JwksClient(JWKS_URL, client=provider.client())
    )

    value = token(CLAIMS, key=keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    assert (await post(server, value)).status_code == 401


async def test_a_provider_that_is_down_refuses_tokens_without_a_500(
    keys: Keys, serve: Serve
) -> None:
    provider = Provider([{"error": "down"}], status=503)
    server = await serve(
        ServerSettings(jwt_jwks_url=JWKS_URL), jwks=JwksClient(JWKS_URL, client=provider.client())
    )

    value = token(CLAIMS, key=keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    response = await post(server, value)

    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or missing credentials"


async def test_keys_fetched_earlier_stay_in_use_while_the_provider_is_down(keys: Keys) -> None:
    provider = Provider([{"keys": [jwk(keys.rsa_key, "rsa-1")]}])
    clock = FakeClock()
    client = JwksClient(JWKS_URL, client=provider.client(), cache_seconds=60, clock=clock)
    await client.key("rsa-1")
    provider.status = 500
    clock.advance(120)

    assert await client.key("rsa-1") is not None
    assert len(provider.requests) == 2


async def test_a_token_without_kid_uses_the_only_key(keys: Keys) -> None:
    one = Provider([{"keys": [jwk(keys.rsa_key, "rsa-1")]}])
    two = Provider([{"keys": [jwk(keys.rsa_key, "rsa-1"), jwk(keys.ec_key, "ec-1")]}])

    assert await JwksClient(JWKS_URL, client=one.client()).key(None) is not None
    assert await JwksClient(JWKS_URL, client=two.client()).key(None) is None


@pytest.mark.parametrize("options", [{"cache_seconds": -1}, {"refetch_seconds": "10"}])
def test_bad_cache_settings_name_the_field(options: dict[str, Any]) -> None:
    name = next(iter(options))

    with pytest.raises(ConfigError, match=f"JwksClient.{name} must be a number"):
        JwksClient(JWKS_URL, **options)
