"""The `limits` key of a tenant's config: what it may hold, checked when a run starts.

```yaml
limits:
  max_model_calls: 20          # per run (CallLimitExceededError past it)
  max_tool_calls: 50           # per run
  monthly_budget_usd: "250"    # CostMiddleware's monthly stop for this tenant
  rates:                       # RateLimiterMiddleware buckets, by the limit's name
    all-calls: {rate: 2, burst: 10}
    model-tokens: {rate: 500, burst: 20000}
```

An unknown key is refused rather than kept: a misspelt limit that silently does not apply
is the one config mistake an operator would not notice until the bill. The values are
checked here, once per run, so a bad limit fails the run before any call and the guards
reading them on every call only look them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from onionskin.core.errors import ConfigError

_KNOWN = ("max_model_calls", "max_tool_calls", "monthly_budget_usd", "rates")


@dataclass(frozen=True, slots=True)
class TenantRate:
    """A tenant's own rate (and optionally burst) for one named rate-limit bucket."""

    rate: float
    """Calls (or tokens) per second for this tenant's bucket."""
    burst: float | None = None
    """The bucket's size for this tenant; None keeps the limit's own burst."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantLimits:
    """The limits one tenant's config sets; None where it sets none."""

    max_model_calls: int | None = None
    max_tool_calls: int | None = None
    monthly_budget_usd: Decimal | None = None
    rates: Mapping[str, TenantRate] = field(default_factory=lambda: MappingProxyType({}))


NO_LIMITS = TenantLimits()


def parse_limits(tenant: str | None, value: object) -> TenantLimits:
    """The `limits` of `tenant`'s config, checked; `ConfigError` names the bad entry."""
    if value is None:
        return NO_LIMITS
    where = f"tenant {tenant!r}: config limits"
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    unknown = sorted(str(key) for key in value if key not in _KNOWN)
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(_KNOWN)}"
        )
    return TenantLimits(
        max_model_calls=_count(where, "max_model_calls", value.get("max_model_calls")),
        max_tool_calls=_count(where, "max_tool_calls", value.get("max_tool_calls")),
        monthly_budget_usd=_usd(where, value.get("monthly_budget_usd")),
        rates=_rates(where, value.get("rates")),
    )


def _count(where: str, field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.{field} must be a whole number >= 0, got {value!r}")
    return value


def _usd(where: str, value: object) -> Decimal | None:
    if value is None:
        return None
    amount: Decimal | None = None
    if isinstance(value, int | float | str | Decimal) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}.monthly_budget_usd must be USD >= 0, got {value!r}")
    return amount


def _positive(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{where} must be a number > 0, got {value!r}")
    if value == float("inf"):
        raise ConfigError(f"{where} must be finite, got {value!r}")
    return float(value)


def _rates(where: str, value: object) -> Mapping[str, TenantRate]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.rates must map bucket names to rates, got {value!r}")
    rates: dict[str, TenantRate] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.rates: a bucket name must be a string, got {name!r}")
        here = f"{where}.rates[{name!r}]"
        if not isinstance(entry, Mapping):
            # A bare number is the rate, keeping the limit's burst.
            rates[name] = TenantRate(_positive(here, entry))
            continue
        extra = sorted(str(key) for key in entry if key not in ("rate", "burst"))
        if extra or "rate" not in entry:
            raise ConfigError(f"{here} takes rate and optionally burst, got {dict(entry)!r}")
        burst: Any = entry.get("burst")
        if burst is not None and _positive(f"{here}.burst", burst) < 1:
            raise ConfigError(f"{here}.burst must be >= 1 to admit a call, got {burst!r}")
        rates[name] = TenantRate(
            _positive(f"{here}.rate", entry["rate"]), None if burst is None else float(burst)
        )
    return MappingProxyType(rates)
