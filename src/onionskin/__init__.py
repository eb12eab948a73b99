"""onionskin: run LLM agents through composable middleware."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from onionskin.core.calls import (
    AgentCall,
    AgentResult,
    Model,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    ToolCall,
    ToolDefinition,
    ToolResult,
)
from onionskin.core.clock import Clock, SystemClock
from onionskin.core.context import (
    MiddlewareContext,
    RunContext,
    current_context,
    current_request_metadata,
    request_metadata_scope,
)
from onionskin.core.errors import (
    AgentError,
    AuthenticationError,
    BudgetExceededError,
    CallLimitExceededError,
    CircuitOpenError,
    ConfigError,
    EmptyModelResponseError,
    GuardError,
    GuardStoreError,
    GuardTimeoutError,
    HallucinationError,
    InvalidInputError,
    MaxStepsExceededError,
    ModelError,
    ModelHTTPError,
    OnionskinError,
    PromptVariableError,
    RateLimitExceededError,
    StopProcessing,
    StoreError,
    TenantError,
    ToolError,
)
from onionskin.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    Event,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    TextDelta,
)
from onionskin.core.messages import DataPart, Message, TextPart, ToolCallPart, ToolReturnPart
from onionskin.core.middleware import BaseMiddleware
from onionskin.core.tenant import TenantContext
from onionskin.core.usage import Usage
from onionskin.middleware.circuit_breaker import CircuitBreakerConfig
from onionskin.middleware.guard import AsyncGuardedTool, GuardedTool, guard
from onionskin.middleware.guard_config import GuardConfig
from onionskin.middleware.guard_pipeline import GuardMiddleware, MiddlewarePipeline
from onionskin.pricing import price_usage
from onionskin.runtime._result import RunResult
from onionskin.runtime.agent import Agent
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.runtime.pipeline import Pipeline
from onionskin.runtime.tool import Tool

try:
    __version__ = _version("onionskin")
except _PackageNotFoundError:  # pragma: no cover - only when run from a source tree
    __version__ = "0.0.0"
from onionskin.analytics import (
    AnalyticsCoordinator,
    AnalyticsEvent,
    AnalyticsExporter,
    BaseAnalyticsExporter,
    ExportResult,
    IAnalyticsExporter,
    LiveHub,
    WebSocketAnalyticsExporter,
)
from onionskin.core.errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ApprovalRequiredError,
)
from onionskin.core.explain import StackExplanation
from onionskin.core.placement import StackContract, place
from onionskin.core.progress import (
    ResumePoint,
)
from onionskin.middleware._hallucination_findings import HallucinationFinding
from onionskin.middleware._transient import is_transient
from onionskin.middleware.budget import BudgetAlert, BudgetConfig, BudgetMiddleware
from onionskin.middleware.call_limit import CallLimitConfig, CallLimitMiddleware
from onionskin.middleware.capture import (
    MessageCaptureMiddleware,
    ModelExchange,
    ToolExchange,
    TranscriptEntry,
    current_transcript,
)
from onionskin.middleware.checkpoint import (
    CheckpointMiddleware,
)
from onionskin.middleware.cost import (
    CostMiddleware,
)
from onionskin.middleware.fallback import (
    FallbackRecord,
    ModelFallbackConfig,
    ModelFallbackMiddleware,
)
from onionskin.middleware.hallucination import HallucinationConfig, HallucinationMiddleware
from onionskin.middleware.hooks import HookConfig, HookMiddleware
from onionskin.middleware.pii import (
    PIIMatch,
    PIIRedactionConfig,
    PIIRedactionMiddleware,
    PIIRedactor,
)
from onionskin.middleware.rate_limit import RateLimit, RateLimitConfig, RateLimiterMiddleware
from onionskin.middleware.retry import RetryConfig, RetryMiddleware
from onionskin.middleware.tenant import (
    TenantMiddleware,
)
from onionskin.middleware.tenant_config import (
    TenantConfigMiddleware,
    current_tenant_config,
)
from onionskin.middleware.timeout import TimeoutConfig, TimeoutMiddleware
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.middleware.validation import ValidationConfig, ValidationMiddleware
from onionskin.plugins import (
    PluginConfig,
    PluginLoadResult,
    PluginRegistry,
    SkippedPlugin,
    assemble_middleware,
    default_registry,
    discover_entry_points,
    register_middleware,
)
from onionskin.project import Project, ProjectError, UnknownAgentError, load_project
from onionskin.runtime.coordinator import MiddlewareCoordinator
from onionskin.stores.approvals import (
    ApprovalQueue,
    ApprovalRequest,
    MemoryApprovalQueue,
)
from onionskin.stores.checkpoints import (
    Checkpoint,
    CheckpointStore,
    MemoryCheckpointStore,
    RunSummary,
)
from onionskin.stores.ledger import (
    CostEntry,
    CostLedger,
    CostTotals,
    MemoryCostLedger,
)
from onionskin.tenancy.approvals import (
    resume_approved,
)
from onionskin.tenancy.checkpoints import (
    ScopedCheckpointStore,
    TenantScopedCheckpointStore,
)
from onionskin.tenancy.config import (
    BasePromptContributor,
    ConfigProvider,
    ConfigRequest,
    IConfigProvider,
    PromptContext,
    PromptContributor,
    StaticConfigProvider,
    StaticPromptContributor,
    compose_prompt,
    merge_configs,
)
from onionskin.tenancy.cost import (
    TenantCostTracker,
)

__all__ = [
    "Agent",
    "AgentCall",
    "AgentError",
    "AgentResult",
    "AnalyticsCoordinator",
    "AnalyticsEvent",
    "AnalyticsExporter",
    "ApprovalDecidedError",
    "ApprovalNotFoundError",
    "ApprovalQueue",
    "ApprovalRequest",
    "ApprovalRequiredError",
    "AsyncGuardedTool",
    "AuthenticationError",
    "BaseAnalyticsExporter",
    "BaseMiddleware",
    "BasePromptContributor",
    "BudgetAlert",
    "BudgetConfig",
    "BudgetExceededError",
    "BudgetMiddleware",
    "CallFailed",
    "CallFinished",
    "CallLimitConfig",
    "CallLimitExceededError",
    "CallLimitMiddleware",
    "CallStarted",
    "Checkpoint",
    "CheckpointMiddleware",
    "CheckpointStore",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "ConfigProvider",
    "ConfigRequest",
    "CostEntry",
    "CostLedger",
    "CostMiddleware",
    "CostTotals",
    "DataPart",
    "EmptyModelResponseError",
    "Event",
    "ExportResult",
    "FallbackRecord",
    "GuardConfig",
    "GuardError",
    "GuardMiddleware",
    "GuardStoreError",
    "GuardTimeoutError",
    "GuardedTool",
    "HallucinationConfig",
    "HallucinationError",
    "HallucinationFinding",
    "HallucinationMiddleware",
    "HookConfig",
    "HookMiddleware",
    "IAnalyticsExporter",
    "IConfigProvider",
    "InvalidInputError",
    "LiveHub",
    "MaxStepsExceededError",
    "MemoryApprovalQueue",
    "MemoryCheckpointStore",
    "MemoryCostLedger",
    "Message",
    "MessageCaptureMiddleware",
    "MiddlewareContext",
    "MiddlewareCoordinator",
    "MiddlewarePipeline",
    "Model",
    "ModelError",
    "ModelExchange",
    "ModelFallbackConfig",
    "ModelFallbackMiddleware",
    "ModelHTTPError",
    "ModelRequest",
    "ModelResponse",
    "OnionskinError",
    "Orchestrator",
    "PIIMatch",
    "PIIRedactionConfig",
    "PIIRedactionMiddleware",
    "PIIRedactor",
    "Pipeline",
    "PipelineCall",
    "PipelineResult",
    "PluginConfig",
    "PluginLoadResult",
    "PluginRegistry",
    "Project",
    "ProjectError",
    "PromptContext",
    "PromptContributor",
    "PromptVariableError",
    "RateLimit",
    "RateLimitConfig",
    "RateLimitExceededError",
    "RateLimiterMiddleware",
    "ResumePoint",
    "RetryConfig",
    "RetryMiddleware",
    "RunCompleted",
    "RunContext",
    "RunEvent",
    "RunFailed",
    "RunResult",
    "RunStarted",
    "RunSummary",
    "ScopedCheckpointStore",
    "SkippedPlugin",
    "StackContract",
    "StackExplanation",
    "StaticConfigProvider",
    "StaticPromptContributor",
    "StopProcessing",
    "StoreError",
    "SystemClock",
    "TenantConfigMiddleware",
    "TenantContext",
    "TenantCostTracker",
    "TenantError",
    "TenantMiddleware",
    "TenantScopedCheckpointStore",
    "TextDelta",
    "TextPart",
    "TimeoutConfig",
    "TimeoutMiddleware",
    "Tool",
    "ToolCall",
    "ToolCallPart",
    "ToolDefinition",
    "ToolError",
    "ToolExchange",
    "ToolResult",
    "ToolReturnPart",
    "TraceConfig",
    "TraceMiddleware",
    "TranscriptEntry",
    "UnknownAgentError",
    "Usage",
    "ValidationConfig",
    "ValidationMiddleware",
    "WebSocketAnalyticsExporter",
    "__version__",
    "assemble_middleware",
    "compose_prompt",
    "current_context",
    "current_request_metadata",
    "current_tenant_config",
    "current_transcript",
    "default_registry",
    "discover_entry_points",
    "guard",
    "is_transient",
    "load_project",
    "merge_configs",
    "place",
    "price_usage",
    "register_middleware",
    "request_metadata_scope",
    "resume_approved",
]
