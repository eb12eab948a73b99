"""Checks of the constructor options the provider adapters share."""

from __future__ import annotations

import math

from onionskin.core.errors import ConfigError


def check_base_url(field: str, base_url: object) -> str | None:
    """`base_url` if it is None or an http(s) URL, else `ConfigError` naming `field`."""
    if base_url is None:
        return None
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{field} must be an http:// or https:// URL, got {base_url!r}")
    return base_url


def check_options(owner: str, name: object, api_key: object, timeout: object) -> None:
    """Refuse a bad model name, API key or timeout with a `ConfigError` naming the field."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{owner} needs a model name like 'gpt-4o-mini', got {name!r}")
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise ConfigError(f"{owner}.api_key must be a non-empty str, got {type(api_key).__name__}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigError(f"{owner}.timeout must be a number of seconds > 0, got {timeout!r}")
