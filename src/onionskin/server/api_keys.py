"""Static API keys, for local use: `key=tenant[:role],...` and the tenant each key acts for.

A key is at least 16 characters; its tenant and role follow the rule of every tenant id
(letters, digits and `_ . @ -`). Errors name an entry's position, never the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from onionskin.core.errors import ConfigError, TenantError
from onionskin.core.tenant import TenantContext

_MIN_API_KEY_CHARS = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyGrant:
    """What a static API key stands for: a tenant, and the caller's role in it."""

    tenant_id: str
    """The organisation every request with this key acts for."""
    role: str | None = None
    """The caller's `org_role` (`"admin"` may use the admin endpoint)."""


def parse_api_keys(text: str, *, source: str = "ONIONSKIN_API_KEYS") -> dict[str, ApiKeyGrant]:
    """Parse `key=tenant[:role],...` into grants by key.

    Raises:
        ConfigError: naming `source` and the entry's position (never the key itself).
    """
    grants: dict[str, ApiKeyGrant] = {}
    for index, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        key, sep, target = entry.strip().partition("=")
        tenant, _, role = target.partition(":")
        if not sep or not key or not tenant:
            raise ConfigError(f"{source}: entry {index} must read key=tenant or key=tenant:role")
        if key in grants:
            raise ConfigError(f"{source}: entry {index} repeats the key of an earlier entry")
        grants[key] = ApiKeyGrant(tenant_id=tenant, role=role or None)
    return grants


def check_grants(grants: Mapping[str, ApiKeyGrant]) -> None:
    """Check every key and grant of `ServerSettings.api_keys`.

    Raises:
        ConfigError: naming the key's position (never the key itself).
    """
    pairs: list[tuple[object, object]] = list(grants.items())  # checked: may come from code
    for index, (key, grant) in enumerate(pairs, start=1):
        where = f"ServerSettings.api_keys: key {index}"
        if not isinstance(key, str) or len(key) < _MIN_API_KEY_CHARS:
            raise ConfigError(f"{where} must be at least {_MIN_API_KEY_CHARS} characters")
        if not isinstance(grant, ApiKeyGrant):
            raise ConfigError(f"{where} must map to an ApiKeyGrant, got {type(grant).__name__}")
        try:  # the same rule as every tenant id, so a key cannot name an unusable tenant
            TenantContext(tenant_id=grant.tenant_id, user_id=grant.role)
        except TenantError as error:
            text = str(error).replace("TenantContext.tenant_id", "its tenant")
            raise ConfigError(
                f"{where}: {text.replace('TenantContext.user_id', 'its role')}"
            ) from None
