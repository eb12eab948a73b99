"""Discovery through a really installed package: tests/fixtures/onionskin_test_plugin.

`make test` installs it into the development environment (see the Makefile); its entry
points cover every way loading can go.
"""

from __future__ import annotations

import logging
from importlib.metadata import distribution
from typing import Any

import pytest

from onionskin import ConfigError
from onionskin.plugins import (
    ENTRY_POINT_GROUP,
    PluginConfig,
    PluginRegistry,
    discover_entry_points,
)
from tests.plugins.conftest import PassThrough, pass_through

pytestmark = pytest.mark.usefixtures("test_plugin_installed")

FIXTURE_PLUGINS = {
    "broken_import",
    "exploding",
    "not_a_factory",
    "not_middleware",
    "opt_out",
    "scope_banner",
}


def fixture_skips(result: object) -> dict[str, str]:
    skipped = getattr(result, "skipped", ())
    return {s.name: s.error for s in skipped if s.name in FIXTURE_PLUGINS}


def test_the_fixture_package_is_really_installed() -> None:
    dist = distribution("onionskin-test-plugin")
    declared = {ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
    assert declared == FIXTURE_PLUGINS


def test_discovery_lists_installed_entry_points_sorted() -> None:
    found = discover_entry_points()
    names = [name for name, _ in found]
    assert names == sorted(names)
    assert set(names) >= FIXTURE_PLUGINS
    targets = {name: ep.value for name, ep in found}
    assert targets["scope_banner"] == "onionskin_test_plugin.banner:scope_banner"


def test_loading_entry_points_is_best_effort(
    registry: PluginRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="onionskin.plugins"):
        result = registry.load(PluginConfig(agent="assistant"))
    assert "scope_banner" in result.loaded
    banner = result.middleware[result.loaded.index("scope_banner")]
    assert type(banner).__qualname__ == "ScopeBannerMiddleware"
    assert type(banner).__module__ == "onionskin_test_plugin.banner"  # imported as installed
    assert "opt_out" in result.opted_out
    skips = fixture_skips(result)
    assert skips == {
        "broken_import": (
            "ImportError: onionskin_test_plugin.broken cannot be imported (on purpose)"
        ),
        "exploding": "RuntimeError: the exploding test plugin always fails",
        "not_a_factory": (
            "ConfigError: onionskin_test_plugin.factories:NOT_A_FACTORY is 'an entry point must "
            "name a callable, not a string', not a factory"
        ),
        "not_middleware": skips["not_middleware"],
    }
    assert "42 is not a middleware" in skips["not_middleware"]
    messages = [r.getMessage() for r in caplog.records if r.name == "onionskin.plugins"]
    for name in ("broken_import", "exploding", "not_a_factory", "not_middleware"):
        assert any(f"{name!r} skipped" in message for message in messages), name
    assert any("'opt_out' opted out" in message for message in messages)


def test_registered_plugins_load_before_entry_points(registry: PluginRegistry) -> None:
    mine = PassThrough("mine")
    registry.register_middleware(lambda config: mine, name="zz_registered")
    result = registry.load(PluginConfig())
    assert result.loaded[0] == "zz_registered"
    assert result.middleware[0] is mine
    assert list(result.loaded[1:]) == sorted(result.loaded[1:])


def test_an_entry_point_whose_name_is_taken_is_skipped(registry: PluginRegistry) -> None:
    registry.register_middleware(pass_through, name="scope_banner")
    result = registry.load(PluginConfig())
    assert result.loaded.count("scope_banner") == 1
    assert isinstance(result.middleware[0], PassThrough)
    assert (
        "loaded before onionskin_test_plugin.banner:scope_banner"
        in (fixture_skips(result)["scope_banner"])
    )


def test_entry_points_can_be_left_out(registry: PluginRegistry) -> None:
    result = registry.load(PluginConfig(), entry_points=False)
    assert result.loaded == result.opted_out == ()
    assert result.skipped == ()


def test_an_entry_point_plugin_gets_its_own_settings(registry: PluginRegistry) -> None:
    result = registry.load(PluginConfig(), settings={"scope_banner": {"metadata_key": "scope"}})
    # Any: the fixture's class is not imported here, so that mypy sees its module only once
    # (as a file of tests/, not also as the installed package).
    banner: Any = result.middleware[result.loaded.index("scope_banner")]
    assert banner.key == "scope"
    with pytest.raises(ConfigError, match="neither registered nor installed"):
        registry.load(PluginConfig(), settings={"scope_baner": {}})
