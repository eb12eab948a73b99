"""Built-in middleware, and `BaseMiddleware` to write your own."""

from onionskin.core.middleware import BaseMiddleware
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.middleware.guard import AsyncGuardedTool, GuardedTool, guard
from onionskin.middleware.guard_config import GuardConfig
from onionskin.middleware.guard_pipeline import GuardMiddleware, MiddlewarePipeline
from onionskin.middleware.logs import LoggingMiddleware
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.middleware.timing import CallTiming, TimingMiddleware

__all__ = [
    "AsyncGuardedTool",
    "BaseMiddleware",
    "CallTiming",
    "CircuitBreakerConfig",
    "CircuitBreakerMiddleware",
    "GuardConfig",
    "GuardMiddleware",
    "GuardedTool",
    "LoggingMiddleware",
    "MiddlewarePipeline",
    "TenantMiddleware",
    "TimingMiddleware",
    "guard",
]
