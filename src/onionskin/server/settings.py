"""`ServerSettings`: how the HTTP API authenticates callers and what it accepts.

Read from the environment with `ServerSettings.from_env()`:

| variable | field |
|---|---|
| `ONIONSKIN_JWT_SECRET` | `jwt_secret` (HS256, at least 32 bytes) |
| `ONIONSKIN_JWT_JWKS_URL` | `jwt_jwks_url` (RS256 / ES256 keys, https or a loopback host) |
| `ONIONSKIN_JWT_ISSUER`, `ONIONSKIN_JWT_AUDIENCE` | `jwt_issuer`, `jwt_audience` |
| `ONIONSKIN_JWT_ALGORITHMS` | `jwt_algorithms` (`RS256,ES256`; derived from the keys if unset) |
| `ONIONSKIN_JWT_LEEWAY` | `jwt_leeway_seconds` (clock skew allowed on `exp` / `nbf`) |
| `ONIONSKIN_API_KEYS` | `api_keys`: `key=tenant[:role],...` |
| `ONIONSKIN_MAX_BODY_BYTES` | `max_body_bytes` (default 1 MiB) |
| `ONIONSKIN_REDIS_URL` | `redis_url` (live analytics across workers, through Redis pub/sub) |
| `ONIONSKIN_REDIS_CHANNEL_PREFIX` | `redis_channel_prefix` (one per deployment; derived if unset) |

A bad value is a `ConfigError` naming the field (or the variable) and never echoing a secret.

Over 200 lines: every setting of the server is checked here, next to the variable it is
read from, so that a bad one fails start-up with its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from onionskin.analytics._checks import channel_name
from onionskin.core.errors import ConfigError
from onionskin.server.api_keys import ApiKeyGrant, check_grants, parse_api_keys

_SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_MIN_SECRET_BYTES = 32  # HS256 needs a 256-bit key (RFC 7518 3.2)
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def _check_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    # A key set fetched over plain HTTP could be swapped on the way: https, or this machine.
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return
    raise ConfigError(
        f"ServerSettings.jwt_jwks_url must be an https:// URL (http:// only for localhost), "
        f"got {url!r}"
    )


def _check_redis_url(url: object) -> None:
    if url is None:
        return
    scheme = urlsplit(url).scheme if isinstance(url, str) else None
    if scheme not in _REDIS_SCHEMES:
        # Not echoed: the URL may hold a password.
        raise ConfigError(
            "ServerSettings.redis_url (ONIONSKIN_REDIS_URL) must be a redis://, rediss:// or "
            "unix:// URL (the value given is not shown: it may hold a password)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """How the HTTP API authenticates callers, and the limits of what it accepts.

    At least one way to authenticate (a JWT secret, a JWKS URL or API keys) is required
    unless `anonymous` is set, for local use only: the tenant then comes from the
    `X-Org-ID` header or the URL path, unchecked.
    """

    jwt_secret: str | None = field(default=None, repr=False)
    """The HS256 secret tokens are signed with (at least 32 bytes)."""
    jwt_jwks_url: str | None = None
    """Where the identity provider publishes its public keys (RS256 / ES256)."""
    jwt_issuer: str | None = None
    """The `iss` every token must carry, when set."""
    jwt_audience: str | None = None
    """The `aud` every token must carry, when set."""
    jwt_algorithms: tuple[str, ...] = ()
    """The accepted `alg` values; empty: HS256 with a secret, RS256 and ES256 with a JWKS."""
    jwt_leeway_seconds: float = 30.0
    """Clock skew allowed when checking `exp`, `nbf` and `iat`."""
    api_keys: Mapping[str, ApiKeyGrant] = field(default_factory=dict, repr=False)
    """Static API keys (`X-API-Key` or `Authorization: Bearer`) and the tenant of each."""
    anonymous: bool = False
    """Serve without credentials (`--insecure-local`): never on a shared network."""
    max_body_bytes: int = 1024 * 1024
    """The largest request body accepted; larger ones get 413."""
    jwks_cache_seconds: float = 300.0
    """How long fetched keys are trusted before they are fetched again."""
    sse_ping_seconds: float = 15.0
    """How often an idle event stream sends a comment, so proxies keep it open."""
    redis_url: str | None = field(default=None, repr=False)
    """Redis for live analytics across worker processes (None: this process only)."""
    redis_channel_prefix: str | None = None
    """The deployment's Redis channels: `{prefix}:{tenant}`. None: derived from the
    database, so that workers sharing one database share channels and two deployments
    sharing one Redis never see each other's tenants (`onionskin.server.routes._live`)."""
    ws_queue_size: int = 1000
    """Live events a WebSocket client may fall behind by before it is dropped (close 1013)."""
    ws_send_timeout: float = 10.0
    """Seconds one WebSocket message may take to send before its client is dropped."""

    def __post_init__(self) -> None:
        secret: object = self.jwt_secret
        if secret is not None and (
            not isinstance(secret, str) or len(secret.encode()) < _MIN_SECRET_BYTES
        ):
            raise ConfigError(
                f"ServerSettings.jwt_secret must be at least {_MIN_SECRET_BYTES} bytes "
                "(HS256 needs a 256-bit key); generate one with `openssl rand -hex 32`"
            )
        _check_url(self.jwt_jwks_url)
        _check_redis_url(self.redis_url)
        if self.redis_channel_prefix is not None:
            channel_name("ServerSettings.redis_channel_prefix", self.redis_channel_prefix)
        for name in ("jwt_issuer", "jwt_audience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"ServerSettings.{name} must be a non-empty string or None")
        object.__setattr__(self, "jwt_algorithms", self._algorithms())
        check_grants(self.api_keys)
        object.__setattr__(self, "api_keys", MappingProxyType(dict(self.api_keys)))
        self._check_numbers()

    def _algorithms(self) -> tuple[str, ...]:
        given = tuple(self.jwt_algorithms)
        if not given:
            derived = ("HS256",) if self.jwt_secret is not None else ()
            return derived + (("RS256", "ES256") if self.jwt_jwks_url is not None else ())
        for alg in given:
            if alg in _SYMMETRIC and self.jwt_secret is None:
                raise ConfigError(f"ServerSettings.jwt_algorithms: {alg} needs jwt_secret")
            bits = int(alg[2:]) if alg in _SYMMETRIC else 0
            if self.jwt_secret is not None and len(self.jwt_secret.encode()) * 8 < bits:
                raise ConfigError(
                    f"ServerSettings.jwt_secret is too short for {alg}: it needs at least "
                    f"{bits // 8} bytes (RFC 7518 3.2)"
                )
            if alg in _ASYMMETRIC and self.jwt_jwks_url is None:
                raise ConfigError(f"ServerSettings.jwt_algorithms: {alg} needs jwt_jwks_url")
            if alg not in _SYMMETRIC | _ASYMMETRIC:
                raise ConfigError(
                    f"ServerSettings.jwt_algorithms: {alg!r} is not accepted; use HS256 with "
                    "a secret, or RS256 / ES256 (PS*, *384, *512) with a JWKS"
                )
        return given

    def _check_numbers(self) -> None:
        limits: tuple[tuple[str, float, float], ...] = (
            ("jwt_leeway_seconds", 0, 300),
            ("max_body_bytes", 1, 1 << 34),
            ("jwks_cache_seconds", 1, 86_400),
            ("sse_ping_seconds", 0.001, 3_600),
            ("ws_queue_size", 1, 1_000_000),
            ("ws_send_timeout", 0.001, 3_600),
        )
        for name, low, high in limits:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"ServerSettings.{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"ServerSettings.{name} must be in [{low}, {high}], got {value}")
        for name in ("max_body_bytes", "ws_queue_size"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"ServerSettings.{name} must be a whole number")

    @property
    def authenticates(self) -> bool:
        """True when some way to authenticate callers is configured."""
        return bool(self.jwt_algorithms or self.api_keys)

    def check_servable(self) -> None:
        """Refuse to serve with no way to authenticate and without `anonymous`.

        Raises:
            ConfigError: naming the variables to set.
        """
        if not self.authenticates and not self.anonymous:
            raise ConfigError(
                "the server has no way to authenticate callers: set ONIONSKIN_JWT_SECRET, "
                "ONIONSKIN_JWT_JWKS_URL or ONIONSKIN_API_KEYS, or pass --insecure-local to "
                "serve this machine only without credentials"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from `ONIONSKIN_*` variables (`os.environ` by default); `overrides` win.

        `overrides` are field values (Any: each field checks its own type).

        Raises:
            ConfigError: a variable that does not parse, naming it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in (
            ("jwt_secret", "ONIONSKIN_JWT_SECRET"),
            ("jwt_jwks_url", "ONIONSKIN_JWT_JWKS_URL"),
            ("jwt_issuer", "ONIONSKIN_JWT_ISSUER"),
            ("jwt_audience", "ONIONSKIN_JWT_AUDIENCE"),
            ("redis_url", "ONIONSKIN_REDIS_URL"),
            ("redis_channel_prefix", "ONIONSKIN_REDIS_CHANNEL_PREFIX"),
        ):
            if env.get(variable):
                values[name] = env[variable]
        if env.get("ONIONSKIN_JWT_ALGORITHMS"):
            algorithms = env["ONIONSKIN_JWT_ALGORITHMS"].split(",")
            values["jwt_algorithms"] = tuple(a.strip() for a in algorithms if a.strip())
        if env.get("ONIONSKIN_API_KEYS"):
            values["api_keys"] = parse_api_keys(env["ONIONSKIN_API_KEYS"])
        for name, variable, kind in (
            ("jwt_leeway_seconds", "ONIONSKIN_JWT_LEEWAY", float),
            ("max_body_bytes", "ONIONSKIN_MAX_BODY_BYTES", int),
        ):
            if env.get(variable):
                try:
                    values[name] = kind(env[variable])
                except ValueError:
                    raise ConfigError(
                        f"{variable} must be a {kind.__name__}, got {env[variable]!r}"
                    ) from None
        return cls(**{**values, **overrides})
