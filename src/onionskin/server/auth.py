"""Who is calling: a JWT or a static API key, checked, becomes a `Principal`.

JWTs come as `Authorization: Bearer <token>`. The algorithms are pinned by configuration,
never taken from the token: `alg: none` is never accepted, an HS256 token is checked only
with the configured secret (so one signed with the provider's *public* key fails), and an
RS256 / ES256 token only with a key from the JWKS whose type matches the algorithm. `exp`
is required, checked with a small leeway, as are `iss` and `aud` when configured. The
claims `org_id`, `org_role` and `sub` become the tenant, role and user.

API keys come as `X-API-Key`, or as a Bearer token that is not a JWT. They are compared by
their SHA-256 digest, so looking one up takes the same time however much of it matches.

Every failure is the same `AuthenticationError`, whose message never says why (expired, bad
signature, unknown key): that detail would help an attacker. The reason goes to the
`onionskin.server.auth` log at debug level, without the token.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.datastructures import Headers

from onionskin.core.errors import AuthenticationError
from onionskin.server.api_keys import ApiKeyGrant
from onionskin.server.jwks import JwksClient
from onionskin.server.settings import ServerSettings

logger = logging.getLogger("onionskin.server.auth")

INVALID_CREDENTIALS = "invalid or missing credentials"
"""The one message every authentication failure carries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller (or, in anonymous local mode, an unidentified one)."""

    tenant_id: str | None
    """The organisation the credentials name (`org_id`, or the API key's tenant)."""
    role: str | None
    """The caller's role in it (`org_role`)."""
    user_id: str | None
    """Who is calling (`sub`, or a digest-derived name for an API key)."""
    method: Literal["jwt", "api_key", "anonymous"]
    """How the caller was identified."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None or isinstance(value, str):
        return value
    raise jwt.InvalidTokenError(f"claim {name!r} is not a string")


class Authenticator:
    """Checks the credentials of a request against `settings`.

    Args:
        settings: the server's settings (secret, JWKS URL, issuer, audience, API keys).
        jwks: where RS256 / ES256 keys come from; built from `settings.jwt_jwks_url` if None.
    """

    def __init__(self, settings: ServerSettings, *, jwks: JwksClient | None = None) -> None:
        self.settings = settings
        if jwks is None and settings.jwt_jwks_url is not None:
            jwks = JwksClient(settings.jwt_jwks_url, cache_seconds=settings.jwks_cache_seconds)
        self.jwks = jwks
        self._keys: dict[bytes, ApiKeyGrant] = {
            _digest(key): grant for key, grant in settings.api_keys.items()
        }

    async def authenticate(self, *, bearer: str | None, api_key: str | None) -> Principal:
        """The caller the credentials prove, or anonymous when the settings allow it.

        Raises:
            AuthenticationError: missing, ambiguous or invalid credentials (always the same
                message).
        """
        try:
            return await self._authenticate(bearer, api_key)
        except (jwt.PyJWTError, ValueError) as error:
            logger.debug("credentials refused: %s: %s", type(error).__name__, error)
            raise AuthenticationError(INVALID_CREDENTIALS) from None

    async def _authenticate(self, bearer: str | None, api_key: str | None) -> Principal:
        if bearer is not None and api_key is not None:
            raise ValueError("both a Bearer token and an X-API-Key header")
        if api_key is not None:
            return self._api_key(api_key)
        if bearer is not None:
            if bearer.count(".") == 2:
                return await self._jwt(bearer)
            return self._api_key(bearer)
        if self.settings.anonymous:
            return Principal(tenant_id=None, role=None, user_id=None, method="anonymous")
        raise ValueError("no credentials")

    def _api_key(self, key: str) -> Principal:
        digest = _digest(key)
        grant = self._keys.get(digest)
        if grant is None:
            raise ValueError("unknown API key")
        user = f"api-key-{digest.hex()[:12]}"  # an audit name that does not reveal the key
        return Principal(tenant_id=grant.tenant_id, role=grant.role, user_id=user, method="api_key")

    async def _jwt(self, token: str) -> Principal:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.jwt_algorithms:
            raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not accepted")
        key: jwt.PyJWK | str
        if alg.startswith("HS"):
            key = self.settings.jwt_secret or ""  # accepted HS* implies a secret (settings)
        else:
            kid = header.get("kid")
            found = None if self.jwks is None else await self.jwks.key(kid if kid else None)
            if found is None:
                raise jwt.InvalidKeyError("no JWKS key for the token's kid")
            key = found
        claims = self._decode(token, key, alg)
        return Principal(
            tenant_id=_claim(claims, "org_id"),
            role=_claim(claims, "org_role"),
            user_id=_claim(claims, "sub"),
            method="jwt",
        )

    def _decode(self, token: str, key: jwt.PyJWK | str, alg: str) -> dict[str, Any]:
        settings = self.settings
        required = ["exp"]
        if settings.jwt_issuer is not None:
            required.append("iss")
        if settings.jwt_audience is not None:
            required.append("aud")
        return jwt.decode(
            token,
            key,
            algorithms=[alg],  # the one algorithm that chose the key, nothing else
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": required, "enforce_minimum_key_length": True},
        )


SECURITY_SCHEMES: tuple[SecurityBase, ...] = (
    HTTPBearer(auto_error=False, description="A JWT, or a static API key."),
    APIKeyHeader(name="X-API-Key", auto_error=False, description="A static API key."),
)
"""How the API authenticates, for the OpenAPI document only (`onionskin.server.openapi`).

They are not dependencies: FastAPI would solve each of them on every request, and
`authenticated` reads the same headers itself, as they read them.
"""


def credentials(headers: Headers) -> tuple[str | None, str | None]:
    """The request's Bearer token and `X-API-Key`, read as `HTTPBearer` and `APIKeyHeader` do.

    Raises:
        AuthenticationError: a header that is present but is not a credential: another
            scheme (Basic ...), `Bearer` without a token, an empty header. It is refused,
            never treated as absent (which anonymous local mode would let through).
    """
    token: str | None = None
    authorization = headers.get("authorization")
    if authorization is not None:
        # FastAPI's `get_authorization_scheme_param`: split at the first space, strip the rest.
        scheme, _, param = authorization.partition(" ")
        token = param.strip()
        if not token or scheme.lower() != "bearer":
            raise AuthenticationError(INVALID_CREDENTIALS)
    api_key = headers.get("x-api-key")
    if api_key == "":
        raise AuthenticationError(INVALID_CREDENTIALS)
    return token, api_key


async def authenticated(request: Request) -> Principal:
    """The request's `Principal` (401 problem+json otherwise), also `request.state.principal`.

    A FastAPI dependency, and a plain function for other dependencies (`request_tenant`):
    the credentials are checked once per request, however many of them ask.
    """
    state = request.state
    principal: Principal | None = getattr(state, "principal", None)
    if principal is None:
        bearer, api_key = credentials(request.headers)
        authenticator: Authenticator = request.app.state.authenticator
        principal = await authenticator.authenticate(bearer=bearer, api_key=api_key)
        state.principal = principal
    return principal
