"""`JwksClient`: an identity provider's public keys, fetched with httpx2 and cached.

PyJWT's own `PyJWKClient` fetches with `urllib` and blocks the event loop (DEPENDENCIES),
so the keys are fetched here with an async httpx2 client, and parsed by PyJWT. Keys are
cached for `cache_seconds`; a token naming a key id the cache does not have triggers one
refetch (the provider rotated its keys), but at most once per `refetch_seconds`, so that
tokens with made-up key ids cannot make the server hammer the provider. While the provider
is unreachable, keys fetched earlier stay in use.

Only asymmetric signature keys are kept: a symmetric (`oct`) key published in a JWKS is
ignored, so a token can never be checked with a shared secret taken from a public document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx2
import jwt

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError

logger = logging.getLogger("onionskin.server.jwks")

_USABLE_TYPES = frozenset({"RSA", "EC", "OKP"})


def _signing_keys(document: Any) -> jwt.PyJWKSet:
    """The asymmetric signature keys of a JWKS document (JSON: Any until checked)."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError("not a JWK Set: no 'keys' list")
    usable = [
        key
        for key in keys
        if isinstance(key, dict)
        and key.get("kty") in _USABLE_TYPES
        and key.get("use", "sig") == "sig"
    ]
    return jwt.PyJWKSet(usable)  # raises PyJWKSetError when none is usable


class JwksClient:
    """Fetches and caches the JSON Web Key Set at `url`.

    Args:
        url: the provider's JWKS document.
        client: the httpx2 client to fetch with; one of its own (closed by `aclose`) if None.
        cache_seconds: how long fetched keys are used before fetching again.
        refetch_seconds: the shortest time between two fetches for an unknown key id.
        clock: where the time comes from.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx2.AsyncClient | None = None,
        cache_seconds: float = 300.0,
        refetch_seconds: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        limits: tuple[tuple[str, object], ...] = (  # object: checked, may come from config
            ("cache_seconds", cache_seconds),
            ("refetch_seconds", refetch_seconds),
        )
        for name, value in limits:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"JwksClient.{name} must be a number >= 0, got {value!r}")
        self.url = url
        self._client = client or httpx2.AsyncClient(timeout=5.0)
        self._owns_client = client is None
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._clock = clock
        self._keys: tuple[jwt.PyJWK, ...] = ()
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The signing key with id `kid` (the only key, when `kid` is None), or None."""
        found = self._find(kid)
        if found is not None and not self._stale():
            return found
        async with self._lock:
            # Checked again under the lock: another request may have fetched meanwhile.
            found = self._find(kid)
            if found is not None and not self._stale():
                return found
            tried = self._tried_at
            if tried is None or self._clock.monotonic() - tried >= self._refetch_seconds:
                await self._fetch()
        return self._find(kid)

    def _stale(self) -> bool:
        fetched = self._fetched_at
        return fetched is None or self._clock.monotonic() - fetched >= self._cache_seconds

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.key_id == kid), None)

    async def _fetch(self) -> None:
        self._tried_at = self._clock.monotonic()
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = tuple(_signing_keys(response.json()).keys)
        except (httpx2.HTTPError, jwt.PyJWTError, ValueError) as error:
            # Logged, not raised: the caller sees "invalid credentials", the operator why.
            logger.error("could not use the JWKS at %s: %s", self.url, error)
            return
        self._keys = keys
        self._fetched_at = self._tried_at

    async def aclose(self) -> None:
        """Close the HTTP client, if this object created it."""
        if self._owns_client:
            await self._client.aclose()
