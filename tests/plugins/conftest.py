"""Fixtures for plugin tests: a fresh registry per test and a small middleware to load."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from onionskin import ToolCall, ToolResult
from onionskin.plugins import PluginConfig, PluginRegistry


class PassThrough:
    """The smallest middleware: one wrap that passes tool calls through."""

    def __init__(self, label: str = "") -> None:
        self.label = label

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        return await next(call)


def pass_through(config: PluginConfig) -> PassThrough:
    """A factory that always contributes."""
    return PassThrough(str(config.settings.get("label", "")))


@pytest.fixture
def test_plugin_installed() -> None:
    """Fail with the fix when tests/fixtures/onionskin_test_plugin is not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("onionskin-test-plugin")
    except PackageNotFoundError:
        pytest.fail(
            "the test plugin package is not installed: run `make test`, or "
            "`pip install -e tests/fixtures/onionskin_test_plugin`"
        )


@pytest.fixture
def registry() -> PluginRegistry:
    """An empty registry: tests never touch the process-wide default one."""
    return PluginRegistry()
