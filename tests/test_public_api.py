from __future__ import annotations

import onionskin

# Seed contract names this release provides; later issues add the rest.
SEED_NAMES = {
    "BaseMiddleware",
    "BudgetExceededError",
    "CircuitBreakerConfig",
    "GuardConfig",
    "MiddlewarePipeline",
    "guard",
    "MiddlewareContext",
    "StopProcessing",
    "TenantContext",
    "TenantScopedCheckpointStore",
    "TenantCostTracker",
    "TenantMiddleware",
    "IConfigProvider",
    "ToolCall",
    "ToolResult",
    "current_request_metadata",
    "request_metadata_scope",
    "register_middleware",
    "MiddlewareCoordinator",
    "AnalyticsCoordinator",
    "AnalyticsEvent",
    "ExportResult",
    "IAnalyticsExporter",
    "WebSocketAnalyticsExporter",
}


def test_all_is_sorted_and_complete() -> None:
    public = sorted(name for name in vars(onionskin) if not name.startswith("_"))
    exported = [name for name in onionskin.__all__ if name != "__version__"]
    assert exported == sorted(exported)
    modules = {
        "core",
        "runtime",
        "middleware",
        "pricing",
        "stores",
        "tenancy",
        "plugins",
        "project",
        "analytics",
        "server",
        "testing",
        "cli",
        "demo",
    }
    assert [name for name in public if name not in modules] == exported


def test_seed_contract_names_are_exported() -> None:
    assert set(onionskin.__all__) >= SEED_NAMES


def test_every_export_resolves() -> None:
    for name in onionskin.__all__:
        assert getattr(onionskin, name) is not None


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert onionskin.__version__ == version("onionskin")
