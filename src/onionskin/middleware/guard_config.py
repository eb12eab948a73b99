"""`GuardConfig`: which built-in guards a `MiddlewarePipeline` or `@guard` applies (seed 001).

The built-ins apply in the seed's order, outermost first: circuit breaker, rate limiter,
budget, validation, hallucination, retry, timeout, trace, hooks. Retry sits outside
timeout, so each attempt has its own deadline; the breaker sits outside retry, so a call
retried three times counts once.
"""

from __future__ import annotations

from dataclasses import dataclass

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardConfig:
    """The built-in guards to apply, each off unless configured."""

    circuit_breaker: CircuitBreakerConfig | None = None
    """Refuse calls to what keeps failing."""
    clock: Clock = SYSTEM_CLOCK
    """Where every guard reads the time and waits (a `FakeClock` in tests)."""

    def __post_init__(self) -> None:
        breaker: object = self.circuit_breaker
        if breaker is not None and not isinstance(breaker, CircuitBreakerConfig):
            raise ConfigError(
                f"GuardConfig.circuit_breaker must be a CircuitBreakerConfig, got {breaker!r}"
            )

    def build(self) -> list[object]:
        """The configured guards as middleware, in the seed's order (outermost first)."""
        layers: list[object] = []
        if self.circuit_breaker is not None:
            layers.append(CircuitBreakerMiddleware(self.circuit_breaker, clock=self.clock))
        return layers
