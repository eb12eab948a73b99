"""Checks of the analytics options: each bad value is a `ConfigError` naming its field."""

from __future__ import annotations

import math
import re

from onionskin.core.errors import ConfigError

# The TenantContext rule: tenant ids become Redis channel names and hub keys.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
# Pattern characters in a channel prefix would widen a listener's subscription; spaces are
# not allowed in a Redis client name, which holds a worker id.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def channel_name(field: str, value: object) -> str:
    """`value` when it may name Redis channels (a prefix) or a worker: no pattern characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"{field} must be 1-128 letters, digits and _ . : @ -, starting with a letter or "
            f"digit; got {value!r}"
        )
    return value


def whole_number(field: str, value: object) -> int:
    """`value` when it is an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} must be a whole number >= 1, got {value!r}")
    return value


def seconds(field: str, value: object) -> float:
    """`value` as float when it is a finite number of seconds > 0 (not a bool)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{field} must be a number of seconds > 0, got {value!r}")
    return float(value)


def optional_seconds(field: str, value: object) -> float | None:
    """`seconds(field, value)`, or None for None (no limit)."""
    return None if value is None else seconds(field, value)


def text(field: str, value: object) -> str:
    """`value` when it is a string with something other than spaces in it."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{field} must be a non-empty string, got {value!r}")
    return value
