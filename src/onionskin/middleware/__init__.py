"""Built-in middleware, and `BaseMiddleware` to write your own."""

from onionskin.core.middleware import BaseMiddleware
from onionskin.middleware._hallucination_findings import HallucinationFinding
from onionskin.middleware._transient import is_transient
from onionskin.middleware.budget import BudgetAlert, BudgetConfig, BudgetMiddleware
from onionskin.middleware.call_limit import CallLimitConfig, CallLimitMiddleware
from onionskin.middleware.capture import (
    MessageCaptureMiddleware,
    ModelExchange,
    ToolExchange,
    TranscriptEntry,
    TranscriptSink,
    current_transcript,
)
from onionskin.middleware.checkpoint import (
    CheckpointMiddleware,
)
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig, CircuitBreakerMiddleware
from onionskin.middleware.cost import (
    CostMiddleware,
)
from onionskin.middleware.fallback import (
    FallbackRecord,
    ModelFallbackConfig,
    ModelFallbackMiddleware,
)
from onionskin.middleware.guard import AsyncGuardedTool, GuardedTool, guard
from onionskin.middleware.guard_config import GuardConfig
from onionskin.middleware.guard_pipeline import GuardMiddleware, MiddlewarePipeline
from onionskin.middleware.hallucination import HallucinationConfig, HallucinationMiddleware
from onionskin.middleware.hooks import HookConfig, HookMiddleware
from onionskin.middleware.logs import LoggingMiddleware
from onionskin.middleware.pii import (
    PIIMatch,
    PIIRedactionConfig,
    PIIRedactionMiddleware,
    PIIRedactor,
)
from onionskin.middleware.rate_limit import RateLimit, RateLimitConfig, RateLimiterMiddleware
from onionskin.middleware.retry import RetryConfig, RetryMiddleware
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.middleware.tenant_config import (
    TenantConfigMiddleware,
    current_tenant_config,
)
from onionskin.middleware.timeout import TimeoutConfig, TimeoutMiddleware
from onionskin.middleware.timing import CallTiming, TimingMiddleware
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.middleware.validation import ValidationConfig, ValidationMiddleware

__all__ = [
    "AsyncGuardedTool",
    "BaseMiddleware",
    "BudgetAlert",
    "BudgetConfig",
    "BudgetMiddleware",
    "CallLimitConfig",
    "CallLimitMiddleware",
    "CallTiming",
    "CheckpointMiddleware",
    "CircuitBreakerConfig",
    "CircuitBreakerMiddleware",
    "CostMiddleware",
    "FallbackRecord",
    "GuardConfig",
    "GuardMiddleware",
    "GuardedTool",
    "HallucinationConfig",
    "HallucinationFinding",
    "HallucinationMiddleware",
    "HookConfig",
    "HookMiddleware",
    "LoggingMiddleware",
    "MessageCaptureMiddleware",
    "MiddlewarePipeline",
    "ModelExchange",
    "ModelFallbackConfig",
    "ModelFallbackMiddleware",
    "PIIMatch",
    "PIIRedactionConfig",
    "PIIRedactionMiddleware",
    "PIIRedactor",
    "RateLimit",
    "RateLimitConfig",
    "RateLimiterMiddleware",
    "RetryConfig",
    "RetryMiddleware",
    "TenantConfigMiddleware",
    "TenantMiddleware",
    "TimeoutConfig",
    "TimeoutMiddleware",
    "TimingMiddleware",
    "ToolExchange",
    "TraceConfig",
    "TraceMiddleware",
    "TranscriptEntry",
    "TranscriptSink",
    "ValidationConfig",
    "ValidationMiddleware",
    "current_tenant_config",
    "current_transcript",
    "guard",
    "is_transient",
]
