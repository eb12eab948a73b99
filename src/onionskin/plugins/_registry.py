"""`PluginRegistry`: middleware factories registered in code or declared by installed packages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from onionskin.core.errors import ConfigError
from onionskin.core.placement import Position, StackContract
from onionskin.plugins._config import PluginConfig, read_only_settings
from onionskin.plugins._entry_points import discover_entry_points
from onionskin.plugins._load import MiddlewareFactory, PluginLoader, PluginLoadResult

FactoryT = TypeVar("FactoryT", bound=MiddlewareFactory)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Registration:
    name: str
    factory: MiddlewareFactory
    contract: StackContract | None


def _placement(
    name: str,
    position: Position | None,
    before: str | Sequence[str],
    after: str | Sequence[str],
    mandatory: bool,
    fail_open: bool,
) -> StackContract | None:
    declared = (position, before, after, mandatory, fail_open) != (None, (), (), False, False)
    if not declared:
        return None
    if position == "capture":
        raise ConfigError(
            f"plugin {name!r}: position 'capture' is reserved for message capture, which stays "
            "innermost; use position='innermost'"
        )
    try:
        return StackContract(
            position=position,
            before=before,
            after=after,
            mandatory=mandatory,
            fail_open=fail_open,
        )
    except ConfigError as error:
        raise ConfigError(f"plugin {name!r}: {error}") from error


class PluginRegistry:
    """Middleware plugins: factories registered here, and those installed packages declare.

    A factory is `factory(config: PluginConfig) -> middleware | None`; None opts out (seed
    004). [load][onionskin.plugins.PluginRegistry.load] calls them all, best-effort.
    """

    def __init__(self) -> None:
        self._registrations: dict[str, _Registration] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The registered plugin names, in registration order (entry points not included)."""
        return tuple(self._registrations)

    def register_middleware(
        self,
        factory: FactoryT,
        *,
        name: str | None = None,
        position: Position | None = None,
        before: str | Sequence[str] = (),
        after: str | Sequence[str] = (),
        mandatory: bool = False,
        fail_open: bool = False,
    ) -> FactoryT:
        """Register `factory` as plugin `name` (default: the factory's `__name__`).

        Placement arguments, when given, wrap the middleware the factory returns with
        [place][onionskin.core.placement.place]: `position` (`"outermost"`, `"innermost"`),
        `before` / `after` (names of middleware it must sit outside / inside of),
        `mandatory`, `fail_open`; they replace a `stack_contract` the middleware declares.
        Returns `factory`, so this also works as a decorator.

        Raises:
            ConfigError: `factory` is not callable, the name is taken or missing, or a
                placement argument is invalid. Nothing is registered then.
        """
        if not callable(factory):
            raise ConfigError(
                "register_middleware: factory must be callable as factory(config) -> "
                f"middleware | None, got {factory!r}"
            )
        # object: plugins are untyped code, so the name is checked, not trusted
        given: object = getattr(factory, "__name__", None) if name is None else name
        if not isinstance(given, str) or not given.strip():
            raise ConfigError(
                f"register_middleware: name must be a non-empty string, got {given!r}"
                + (f" ({factory!r} has no usable __name__: pass name=)" if name is None else "")
            )
        name = given
        if name in self._registrations:
            raise ConfigError(
                f"register_middleware: a plugin named {name!r} is registered already; "
                "pass a different name="
            )
        contract = _placement(name, position, before, after, mandatory, fail_open)
        self._registrations[name] = _Registration(name=name, factory=factory, contract=contract)
        return factory

    def unregister(self, name: str) -> None:
        """Remove plugin `name`; `ConfigError` if no plugin of that name is registered."""
        if name not in self._registrations:
            known = ", ".join(map(repr, self._registrations)) or "none"
            raise ConfigError(f"no plugin named {name!r} is registered (registered: {known})")
        del self._registrations[name]

    def load(
        self,
        config: PluginConfig,
        *,
        entry_points: bool = True,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> PluginLoadResult:
        """Call every registered factory, then every `onionskin.middleware` entry point.

        Best-effort (seed 004): a plugin whose entry point fails to import, whose factory
        raises or returns something that is no middleware is skipped and logged on logger
        `onionskin.plugins` with its name and the error; None opts out. Registered plugins
        load in registration order, then entry points sorted by name; an entry point with
        the name of a plugin loaded before it is skipped.

        Args:
            config: what each factory receives.
            entry_points: also load the plugins installed packages declare.
            settings: each plugin's own settings by plugin name; a plugin named here gets
                `config` with these `settings`.

        Raises:
            ConfigError: `config` is no `PluginConfig`, or `settings` is malformed or names
                no known plugin. No factory has been called then.
        """
        if not isinstance(config, PluginConfig):
            raise ConfigError(f"PluginRegistry.load: config must be a PluginConfig, got {config!r}")
        registrations = list(self._registrations.values())
        discovered = discover_entry_points() if entry_points else []
        known = [r.name for r in registrations] + [name for name, _ in discovered]
        loader = PluginLoader(config=config, settings=_per_plugin(settings, known))
        for registration in registrations:
            loader.run(registration.name, registration.factory, registration.contract)
        taken = {r.name for r in registrations}
        for name, entry_point in discovered:
            if name in taken:
                clash = ConfigError(f"a plugin named {name!r} loaded before {entry_point.value}")
                loader.skip(name, clash, "its name is taken:", trace=False)
                continue
            taken.add(name)
            try:
                factory = entry_point.load()
            except Exception as error:  # best-effort: a plugin that cannot import is skipped
                loader.skip(name, error, f"its entry point {entry_point.value} failed to load:")
                continue
            if not callable(factory):
                not_callable = ConfigError(f"{entry_point.value} is {factory!r}, not a factory")
                loader.skip(name, not_callable, "its entry point is no factory:", trace=False)
                continue
            loader.run(name, factory, None)
        return loader.result()


def _per_plugin(
    settings: Mapping[str, Mapping[str, Any]] | None, known: list[str]
) -> Mapping[str, Mapping[str, Any]]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"settings must map plugin names to their settings, got {settings!r}")
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise ConfigError(
            f"settings name plugins that are neither registered nor installed: {unknown!r} "
            f"(plugins: {', '.join(map(repr, known)) or 'none'})"
        )
    return {name: read_only_settings(f"settings[{name!r}]", own) for name, own in settings.items()}
