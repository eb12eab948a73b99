"""Calling plugin factories, best-effort: a plugin that fails is skipped and logged."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from onionskin.core.chain import inspect_middleware
from onionskin.core.errors import ConfigError
from onionskin.core.placement import Placed, StackContract, contract_of, place
from onionskin.plugins._config import PluginConfig

logger = logging.getLogger("onionskin.plugins")

# object: a factory returns any middleware form (object with hooks, function, Placed) or None.
MiddlewareFactory: TypeAlias = Callable[[PluginConfig], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedPlugin:
    """A plugin that did not load, and why."""

    name: str
    error: str
    """`"ErrorType: message"`: what went wrong importing it, calling it, or with its result."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginLoadResult:
    """What loading the plugins gave: their middleware, and which loaded, opted out or failed."""

    middleware: tuple[object, ...] = ()
    """The plugins' middleware, in load order (registered first, then entry points by name)."""
    loaded: tuple[str, ...] = ()
    """Names of the plugins that contributed a middleware, in the same order."""
    opted_out: tuple[str, ...] = ()
    """Names of the plugins whose factory returned None."""
    skipped: tuple[SkippedPlugin, ...] = ()
    """Plugins that failed to import, raised, or returned something that is no middleware."""


def describe(error: BaseException) -> str:
    """`"ErrorType: message"`, the form skipped plugins report their error in."""
    return f"{type(error).__name__}: {error}"


def checked_middleware(result: object, contract: StackContract | None) -> object:
    """`result` if it is a middleware a plugin may contribute, placed by `contract` if given.

    Raises:
        ConfigError: saying what is wrong with `result`.
    """
    if inspect.iscoroutine(result):
        result.close()  # never awaited: close it so Python does not warn about it later
        raise ConfigError("the factory is async; a middleware factory is a plain function")
    inner = result.middleware if isinstance(result, Placed) else result
    if isinstance(inner, type):
        raise ConfigError(f"the factory returned the class {inner.__name__}; return an instance")
    inspect_middleware(inner)
    declared = result.contract if isinstance(result, Placed) else contract_of(result)
    # A registration cannot ask for "capture" (refused by register_middleware); a result can.
    if declared.position == "capture":
        raise ConfigError(
            "position 'capture' is reserved for message capture, which stays innermost; "
            "use position='innermost'"
        )
    if contract is None:
        return result
    # A registration's placement replaces the one the middleware itself declares.
    return place(
        result,
        name=contract.name,
        position=contract.position,
        before=contract.before,
        after=contract.after,
        mandatory=contract.mandatory,
        fail_open=contract.fail_open,
    )


@dataclass(slots=True)
class PluginLoader:
    """Calls factories one by one and collects a `PluginLoadResult`."""

    config: PluginConfig
    settings: Mapping[str, Mapping[str, Any]]
    """Each plugin's own settings, by plugin name (read-only copies)."""
    middleware: list[object] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)
    skipped: list[SkippedPlugin] = field(default_factory=list)

    def skip(
        self, name: str, error: BaseException, while_doing: str, *, trace: bool = True
    ) -> None:
        """Record `name` as skipped and log why (with the traceback when `trace`)."""
        self.skipped.append(SkippedPlugin(name=name, error=describe(error)))
        logger.warning(
            "plugin %r skipped, %s %s (the stack is built without it)",
            name,
            while_doing,
            describe(error),
            exc_info=error if trace else None,
        )

    def run(self, name: str, factory: MiddlewareFactory, contract: StackContract | None) -> None:
        """Call `factory` for plugin `name`, best-effort."""
        own = self.settings.get(name)
        config = self.config if own is None else replace(self.config, settings=own)
        try:
            result = factory(config)
        except Exception as error:  # best-effort (seed 004): a raising factory is skipped
            self.skip(name, error, "its factory raised:")
            return
        if result is None:
            self.opted_out.append(name)
            logger.info("plugin %r opted out (its factory returned None)", name)
            return
        try:
            middleware = checked_middleware(result, contract)
        except ConfigError as error:
            self.skip(name, error, "its factory returned no usable middleware:", trace=False)
            return
        self.middleware.append(middleware)
        self.loaded.append(name)
        logger.debug("plugin %r loaded: %r", name, middleware)

    def result(self) -> PluginLoadResult:
        """What was loaded, opted out and skipped so far."""
        return PluginLoadResult(
            middleware=tuple(self.middleware),
            loaded=tuple(self.loaded),
            opted_out=tuple(self.opted_out),
            skipped=tuple(self.skipped),
        )
