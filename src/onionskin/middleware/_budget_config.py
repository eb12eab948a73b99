"""`BudgetConfig` and its checks, the alert it sends, and the UTC calendar periods of its keys.

Re-exported from `onionskin.middleware.budget`, where users import them; kept apart so that
the guard's module stays readable. Over 200 lines: fourteen checked fields, and the period
labels those fields name, which the guard reads on every call and so keeps per period.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from types import MappingProxyType
from typing import Literal, assert_never, get_args

from onionskin.core.calls import Model
from onionskin.core.errors import BudgetExceededError, ConfigError
from onionskin.middleware._config import (
    require_bool,
    require_choice,
    require_int,
    require_positive,
)

logger = logging.getLogger("onionskin.guards")
Period = Literal["day", "month", "total"]
OnExceeded = Literal["raise", "fallback", "approve"]

_DAY = 86_400.0
KEEP_FOR: Mapping[str, float | None] = MappingProxyType(
    {"run": 7 * _DAY, "session": 30 * _DAY, "day": 2 * _DAY, "month": 62 * _DAY, "total": None}
)
"""Seconds a budget line's state outlives its last write, by scope or tenant period: past
the end of its period, or of any plausible run or session; a tenant's "total" for good."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetAlert:
    """A budget crossed an alert threshold; sent once per line, threshold and period."""

    scope: str
    """`"run"`, `"session"` or `"tenant"`."""
    key: str
    """The budget line's store key."""
    tenant_id: str | None
    threshold: Decimal
    """The share of the limit that was reached (`Decimal("0.8")`)."""
    limit: Decimal
    spent: Decimal
    """USD settled on the line when the threshold was crossed."""


AlertCallback = Callable[[BudgetAlert], Awaitable[None] | None]
ApproveCallback = Callable[[BudgetExceededError], Awaitable[bool] | bool]


async def send_alert(on_alert: AlertCallback | None, alert: BudgetAlert) -> None:
    """Hand `alert` to `on_alert` (sync or async), or log it when there is no callback."""
    if on_alert is None:
        message = "budget: %s budget %s reached %s of its $%s limit ($%s spent)"
        a = alert
        logger.warning(message, a.scope, a.key, a.threshold, a.limit, a.spent)
        return
    try:
        outcome = on_alert(alert)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        # The call already ran and was paid for: a failing alert hook must not lose it.
        logger.exception("budget: the on_alert callback failed for %s", alert.key)


def _require_money(field: str, value: object) -> None:
    if value is None:
        return
    exact = isinstance(value, Decimal | int) and not isinstance(value, bool)
    if not exact or not Decimal(value).is_finite() or value < 0:  # type: ignore[arg-type,operator]
        raise ConfigError(
            f"BudgetConfig.{field} must be a Decimal amount of USD >= 0 (never a float, so "
            f"that money stays exact), or None; got {value!r}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetConfig:
    """Which budgets apply, how a call is estimated, and what happens when one would be spent."""

    per_call: Decimal | None = None
    """The most one call may cost, in USD (its estimate is checked)."""
    per_run: Decimal | None = None
    """The most one run may cost, in USD."""
    per_session: Decimal | None = None
    """The most one session may cost (`metadata["session_id"]` or the tool call's)."""
    per_tenant: Decimal | None = None
    """The most one tenant may spend per `tenant_period`, in USD."""
    tenant_period: Period = "month"
    """The tenant budget's UTC calendar period: `"day"`, `"month"` or `"total"` (no reset)."""
    default_max_tokens: int = 4096
    """The output bound of the estimate when a request sets no `max_tokens`."""
    tool_costs: Mapping[str, Decimal] = field(default_factory=dict, hash=False)
    """USD per call of a tool, by tool name; tools not listed are free and not reserved."""
    alert_thresholds: tuple[float | Decimal, ...] = (0.8,)
    """Shares of a limit (0 < share <= 1) at which `on_alert` fires, once each."""
    on_alert: AlertCallback | None = None
    """Called (sync or async) with a `BudgetAlert`; None logs a warning instead."""
    on_exceeded: OnExceeded = "raise"
    """`"raise"` BudgetExceededError, `"fallback"` to `fallback_model`, or ask `approve`."""
    fallback_model: Model | None = None
    """The cheaper model a refused model call is sent to, with `on_exceeded="fallback"`."""
    approve: ApproveCallback | None = None
    """Gets the refusal (sync or async); True lets the call through (`on_exceeded="approve"`)."""
    reservation_ttl: float = 600.0
    """Seconds a reservation holds budget if never settled; longer than any call takes."""
    fail_open: bool = False
    """Let calls through unguarded while the store is down (logged once), instead of failing."""

    def __post_init__(self) -> None:
        for name in ("per_call", "per_run", "per_session", "per_tenant"):
            _require_money(name, getattr(self, name))
        require_choice("BudgetConfig", "tenant_period", self.tenant_period, get_args(Period))
        require_int("BudgetConfig", "default_max_tokens", self.default_max_tokens)
        self._check_tool_costs()
        self._check_thresholds()
        require_choice("BudgetConfig", "on_exceeded", self.on_exceeded, get_args(OnExceeded))
        self._check_callbacks()
        require_positive("BudgetConfig", "reservation_ttl", self.reservation_ttl)
        require_bool("BudgetConfig", "fail_open", self.fail_open)

    def _check_tool_costs(self) -> None:
        costs: object = self.tool_costs
        if not isinstance(costs, Mapping) or not all(isinstance(k, str) for k in costs):
            raise ConfigError(f"BudgetConfig.tool_costs must map tool names to USD, got {costs!r}")
        for name, cost in costs.items():
            _require_money(f"tool_costs[{name!r}]", cost)
        # A private copy: the caller's dict may change, the frozen config must not.
        object.__setattr__(self, "tool_costs", MappingProxyType(dict(costs)))

    def _check_thresholds(self) -> None:
        shares: object = self.alert_thresholds
        if not isinstance(shares, tuple) or not all(
            isinstance(s, int | float | Decimal) and not isinstance(s, bool) and 0 < s <= 1
            for s in shares
        ):
            raise ConfigError(
                "BudgetConfig.alert_thresholds must be a tuple of shares of the limit, each "
                f"0 < share <= 1; got {shares!r}"
            )

    def _check_callbacks(self) -> None:
        for name in ("on_alert", "approve"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"BudgetConfig.{name} must be callable, got {value!r}")
        model = self.fallback_model
        if model is not None and not all(
            callable(getattr(model, m, None)) for m in ("request", "stream", "cost")
        ):
            raise ConfigError(f"BudgetConfig.fallback_model must be a Model, got {model!r}")
        if self.on_exceeded == "fallback" and model is None:
            raise ConfigError('BudgetConfig.fallback_model is needed with on_exceeded="fallback"')
        if self.on_exceeded == "approve" and self.approve is None:
            raise ConfigError('BudgetConfig.approve is needed with on_exceeded="approve"')


def alert_marks(config: BudgetConfig, limit: int | None) -> tuple[tuple[Decimal, int], ...]:
    """Each alert share, exact, with the micro-dollars at which a line of `limit` reaches it.

    None for a line without a limit, or with a zero one.
    """
    if not limit:
        return ()
    shares = [Decimal(str(share)) for share in config.alert_thresholds]
    # spent >= share * limit, for whole micro-dollars, is spent >= ceil(share * limit).
    return tuple((s, int((s * limit).to_integral_value(rounding=ROUND_CEILING))) for s in shares)


def period_label(period: Period, now: float) -> str:
    """The UTC calendar period that Unix time `now` falls in: `day:2026-11-05`, `month:2026-11`."""
    if period == "total":
        return "total"
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return f"day:{moment:%Y-%m-%d}"
    if period == "month":
        return f"month:{moment:%Y-%m}"
    assert_never(period)  # pragma: no cover - the config admits no other period


def _period_bounds(period: Period, label: str) -> tuple[float, float]:
    """Unix seconds where the period named `label` starts and where the next one starts."""
    if period == "total":
        return -math.inf, math.inf
    if period == "day":
        start = datetime.strptime(label, "day:%Y-%m-%d").replace(tzinfo=UTC)
        return start.timestamp(), (start + timedelta(days=1)).timestamp()
    if period == "month":
        start = datetime.strptime(label, "month:%Y-%m").replace(tzinfo=UTC)
        following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        return start.timestamp(), following.timestamp()
    assert_never(period)  # pragma: no cover - the config admits no other period


class PeriodLabels:
    """`period_label` of one period, formatted once per period rather than once per call.

    A budgeted call reads its tenant's period on every admission, and formatting a date
    costs more than the whole rest of the admission: the label is kept with the bounds of
    its period and reused while the clock stays inside them.
    """

    __slots__ = ("_current", "period")

    def __init__(self, period: Period) -> None:
        self.period: Period = period
        # One tuple, replaced whole: threads sharing the guard never see half an update.
        self._current: tuple[float, float, str] = (math.inf, -math.inf, "")

    def label(self, now: float) -> str:
        """The label of the period that Unix time `now` falls in."""
        start, end, label = self._current
        if start <= now < end:
            return label
        label = period_label(self.period, now)
        start, end = _period_bounds(self.period, label)
        # datetime rounds to the microsecond: the last microsecond of a period may already
        # read as the next one, so it is never served from the cache.
        self._current = (start, end - 1e-6, label)
        return label
