"""Built-in middleware, and `BaseMiddleware` to write your own."""

from onionskin.core.middleware import BaseMiddleware
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.middleware.logs import LoggingMiddleware
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.middleware.timing import CallTiming, TimingMiddleware

__all__ = [
    "BaseMiddleware",
    "CallTiming",
    "CircuitBreakerConfig",
    "CircuitBreakerMiddleware",
    "LoggingMiddleware",
    "TenantMiddleware",
    "TimingMiddleware",
]
