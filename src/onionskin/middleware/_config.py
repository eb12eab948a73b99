"""Checks shared by the guards' configs: a bad value raises `ConfigError` naming the field.

Configs are frozen dataclasses whose values may come from YAML or JSON, where the type
hints are no promise, so every check takes `object`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from onionskin.core.errors import ConfigError


def require_int(owner: str, field: str, value: object, *, minimum: int = 1) -> None:
    """`value` is an int (not a bool) of at least `minimum`."""
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{owner}.{field} must be an int >= {minimum}, got {value!r}")


def require_positive(owner: str, field: str, value: object, *, allow_zero: bool = False) -> None:
    """`value` is a finite number above zero (or zero, with `allow_zero`)."""
    ok = False
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{owner}.{field} must be a finite number {bound}, got {value!r}")


def require_choice(owner: str, field: str, value: object, choices: Iterable[str]) -> None:
    """`value` is one of `choices`."""
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ConfigError(f"{owner}.{field} must be one of {listed}, got {value!r}")


def require_exceptions(owner: str, field: str, value: object) -> None:
    """`value` is a tuple of exception classes."""
    if not isinstance(value, tuple) or not all(
        isinstance(item, type) and issubclass(item, BaseException) for item in value
    ):
        raise ConfigError(f"{owner}.{field} must be a tuple of exception classes, got {value!r}")


def require_bool(owner: str, field: str, value: object) -> None:
    """`value` is True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{field} must be True or False, got {value!r}")
