"""The agent's middleware list: core, then plugins, then message capture (seed 004)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from onionskin.core.errors import ConfigError
from onionskin.core.placement import Placed
from onionskin.middleware.capture import MessageCaptureMiddleware
from onionskin.plugins._config import PluginConfig
from onionskin.plugins._default import default_registry
from onionskin.plugins._registry import PluginRegistry


def _capture_layer(capture: object) -> MessageCaptureMiddleware | None:
    if capture is True:
        return MessageCaptureMiddleware()
    if capture is False:
        return None
    if isinstance(capture, MessageCaptureMiddleware):
        return capture
    raise ConfigError(f"capture must be True, False or a MessageCaptureMiddleware, got {capture!r}")


def assemble_middleware(
    core: Iterable[object],
    *,
    config: PluginConfig,
    registry: PluginRegistry | None = None,
    entry_points: bool = True,
    capture: MessageCaptureMiddleware | bool = True,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[object]:
    """The middleware for `Orchestrator(agent, middleware=...)`: core, plugins, capture.

    Plugins load best-effort (see [PluginRegistry.load][onionskin.plugins.PluginRegistry.load]);
    their hooks run after the core chain's and before message capture, which records the
    turn as the model really saw it (seed 004). A plugin's declared position may move it;
    capture stays innermost.

    Args:
        core: the core middleware, outermost first.
        config: what each plugin factory receives.
        registry: where the factories are registered; the default registry if None.
        entry_points: also load the plugins installed packages declare.
        capture: add a new `MessageCaptureMiddleware` (True), this one, or none (False).
        settings: each plugin's own settings, by plugin name.

    Raises:
        ConfigError: a bad argument, or `core` holds a message capture already while
            `capture` adds one. Checked before any plugin factory is called.
    """
    core = list(core)
    capture_layer = _capture_layer(capture)
    if registry is None:
        registry = default_registry()
    elif not isinstance(registry, PluginRegistry):
        raise ConfigError(f"registry must be a PluginRegistry or None, got {registry!r}")
    if capture_layer is not None and any(
        isinstance(item.middleware if isinstance(item, Placed) else item, MessageCaptureMiddleware)
        for item in core
    ):
        raise ConfigError(
            "core holds a MessageCaptureMiddleware already; a run needs one: pass "
            "capture=False, or move it out of core and pass capture=<it>"
        )
    plugins = registry.load(config, entry_points=entry_points, settings=settings)
    return [*core, *plugins.middleware, *([] if capture_layer is None else [capture_layer])]
