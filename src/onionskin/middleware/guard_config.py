"""`GuardConfig`: which built-in guards a `MiddlewarePipeline` or `@guard` applies (seed 001).

The built-ins apply in the seed's order, outermost first: circuit breaker, rate limiter,
budget, validation, hallucination, retry, timeout, trace, hooks. Retry sits outside
timeout, so each attempt has its own deadline; the breaker sits outside retry, so a call
retried three times counts once; trace sits inside retry, so every attempt is recorded.

Shorthands cover the seed's common cases (`validate_input=True`, `max_retries=2`,
`timeout=5.0`, `before_call=...`); the full config objects (`validation=`, `retry=`) give
every option. Giving both for one guard is refused: which one should win is a guess.

With `redis_url`, a rate limiter and a budget are admitted together, in one round trip to
Redis (the issue's requirement; `_admission.py`): the limiter leaves its charges to the
budget layer just inside it, which takes them with its reservation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError
from onionskin.middleware._admission import fuse
from onionskin.middleware._config import require_bool, require_int, require_positive
from onionskin.middleware.budget import BudgetConfig, BudgetMiddleware
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.middleware.hallucination import HallucinationConfig, HallucinationMiddleware
from onionskin.middleware.hooks import AfterCall, BeforeCall, HookMiddleware
from onionskin.middleware.rate_limit import RateLimit, RateLimitConfig, RateLimiterMiddleware
from onionskin.middleware.retry import RetryConfig, RetryMiddleware
from onionskin.middleware.timeout import TimeoutConfig, TimeoutMiddleware
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.middleware.validation import ValidationConfig, ValidationMiddleware

_TYPED_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("circuit_breaker", CircuitBreakerConfig),
    ("rate_limit", (RateLimitConfig, RateLimit)),
    ("budget", BudgetConfig),
    ("validation", ValidationConfig),
    ("hallucination", HallucinationConfig),
    ("retry", RetryConfig),
    ("trace", TraceConfig),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardConfig:
    """The built-in guards to apply, each off unless configured."""

    circuit_breaker: CircuitBreakerConfig | None = None
    """Refuse calls to what keeps failing."""
    rate_limit: RateLimitConfig | RateLimit | None = None
    """Token buckets per tenant, user, tool or model."""
    budget: BudgetConfig | None = None
    """Spend limits per call, run, session and tenant, reserved before each call."""
    validate_input: bool = False
    """Check arguments against the function's type hints (shorthand for `validation`)."""
    validate_output: bool = False
    """Check the return value against the function's return annotation."""
    validation: ValidationConfig | None = None
    """Validation with every option (input/output models, coercion)."""
    hallucination: HallucinationConfig | None = None
    """Catch unknown tools, arguments outside the schema and unsupported values."""
    max_retries: int = 0
    """Retry transient failures this many times (shorthand for `retry`)."""
    retry: RetryConfig | None = None
    """Retries with every option (what to retry, backoff, Retry-After)."""
    timeout: float | None = None
    """Cancel a call after this many seconds."""
    trace: TraceConfig | None = None
    """Write a JSONL record and an OpenTelemetry span per call."""
    before_call: BeforeCall | None = None
    """Called with each call before it runs; may return a replacement call."""
    after_call: AfterCall | None = None
    """Called with each call and its result; may return a replacement result."""
    redis_url: str | None = None
    """Keep breaker, limiter and budget state in Redis at this URL, shared by every process;
    None keeps it in this process's memory."""
    store_prefix: str = "onionskin"
    """The prefix of every Redis key these guards write."""
    clock: Clock = SYSTEM_CLOCK
    """Where every guard reads the time, waits and draws jitter (a `FakeClock` in tests)."""

    def __post_init__(self) -> None:
        for field, kind in _TYPED_FIELDS:
            value: object = getattr(self, field)
            if value is not None and not isinstance(value, kind):
                names = " or ".join(
                    k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,))
                )
                raise ConfigError(f"GuardConfig.{field} must be a {names} or None, got {value!r}")
        require_bool("GuardConfig", "validate_input", self.validate_input)
        require_bool("GuardConfig", "validate_output", self.validate_output)
        require_int("GuardConfig", "max_retries", self.max_retries, minimum=0)
        if self.timeout is not None:
            require_positive("GuardConfig", "timeout", self.timeout)
        if self.validation is not None and (self.validate_input or self.validate_output):
            raise ConfigError(
                "GuardConfig: give validation= or validate_input/validate_output, not both"
            )
        if self.retry is not None and self.max_retries:
            raise ConfigError("GuardConfig: give retry= or max_retries, not both")
        url: object = self.redis_url
        if url is not None and not (
            isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://"))
        ):
            raise ConfigError(f"GuardConfig.redis_url must be a redis:// URL, got {url!r}")
        prefix: object = self.store_prefix
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(
                f"GuardConfig.store_prefix must be a non-empty string, got {prefix!r}"
            )
        for field in ("before_call", "after_call"):
            hook: object = getattr(self, field)
            if hook is not None and not callable(hook):
                raise ConfigError(f"GuardConfig.{field} must be callable, got {hook!r}")

    def _validation(self) -> ValidationConfig | None:
        if self.validation is not None:
            return self.validation
        if self.validate_input or self.validate_output:
            return ValidationConfig(
                validate_input=self.validate_input, validate_output=self.validate_output
            )
        return None

    def _retry(self) -> RetryConfig | None:
        if self.retry is not None:
            return self.retry
        return RetryConfig(max_retries=self.max_retries) if self.max_retries else None

    def build(self) -> list[object]:
        """The configured guards as middleware, in the seed's order (outermost first).

        With `redis_url`, the guards share a Redis client that `MiddlewarePipeline.aclose()`
        closes; use `build_with_stores()` to close it yourself.
        """
        return self.build_with_stores()[0]

    def _limiter_and_budget(self, stores: StoreConnections) -> list[object]:
        """The rate limiter and the budget, admitted together when both are on Redis."""
        clock, limit, budget = self.clock, self.rate_limit, self.budget
        joint = None if limit is None or budget is None else stores.admission()
        if limit is not None and budget is not None and joint is not None:
            limiter = RateLimiterMiddleware(limit, clock=clock, store=joint.limits)
            spender = BudgetMiddleware(budget, clock=clock, store=joint.budget)
            fuse(limiter, spender, joint)
            return [limiter, spender]
        layers: list[object] = []
        if limit is not None:
            layers.append(RateLimiterMiddleware(limit, clock=clock, store=stores.rate_limit()))
        if budget is not None:
            layers.append(BudgetMiddleware(budget, clock=clock, store=stores.budget()))
        return layers

    def build_with_stores(self) -> tuple[list[object], StoreConnections]:
        """The guards, and the store connections they opened (to close when done)."""
        clock = self.clock
        stores = StoreConnections(self.redis_url, self.store_prefix)
        layers: list[Any] = []  # Any: one list holds every guard type
        if self.circuit_breaker is not None:
            layers.append(
                CircuitBreakerMiddleware(self.circuit_breaker, clock=clock, store=stores.circuit())
            )
        layers += self._limiter_and_budget(stores)
        validation = self._validation()
        if validation is not None:
            layers.append(ValidationMiddleware(validation))
        if self.hallucination is not None:
            layers.append(HallucinationMiddleware(self.hallucination))
        retry = self._retry()
        if retry is not None:
            layers.append(RetryMiddleware(retry, clock=clock))
        if self.timeout is not None:
            layers.append(TimeoutMiddleware(TimeoutConfig(seconds=self.timeout)))
        if self.trace is not None:
            layers.append(TraceMiddleware(self.trace, clock=clock))
        if self.before_call is not None or self.after_call is not None:
            layers.append(HookMiddleware(before_call=self.before_call, after_call=self.after_call))
        return layers, stores


class StoreConnections:
    """The Redis stores of one built pipeline, on one client; None means memory (the default).

    Imported on demand, so that guards without Redis never import the redis package.
    """

    def __init__(self, url: str | None, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._scripts: Any = None  # Any: RedisScripts, imported only when Redis is configured

    def _redis(self) -> Any:
        if self._scripts is None:
            from onionskin.stores._redis import RedisScripts

            self._scripts = RedisScripts.from_url(self._url, prefix=self._prefix)
        return self._scripts

    async def check(self) -> None:
        """Ping Redis, when configured: `StoreError` if it cannot be reached."""
        if self._url is not None:
            await self._redis().ping()

    async def aclose(self) -> None:
        """Close the Redis client, if one was opened."""
        if self._scripts is not None:
            await self._scripts.aclose()
            self._scripts = None

    def circuit(self) -> Any:
        """A Redis circuit store, or None for the guard's own memory store."""
        if self._url is None:
            return None
        from onionskin.stores.redis_circuit import RedisCircuitStore

        return RedisCircuitStore(self._redis())

    def budget(self) -> Any:
        """A Redis budget store, or None for the guard's own memory store."""
        if self._url is None:
            return None
        from onionskin.stores.redis_budget import RedisBudgetStore

        return RedisBudgetStore(self._redis())

    def admission(self) -> Any:
        """A Redis store admitting limiter and budget together, or None on memory."""
        if self._url is None:
            return None
        from onionskin.stores.redis_admission import RedisAdmissionStore

        return RedisAdmissionStore(self._redis())

    def rate_limit(self) -> Any:
        """A Redis rate-limit store, or None for the guard's own memory store."""
        if self._url is None:
            return None
        from onionskin.stores.redis_rate_limit import RedisRateLimitStore

        return RedisRateLimitStore(self._redis())
