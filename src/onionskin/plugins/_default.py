"""The process-wide registry plugins register into (seed 004's `registry`)."""

from __future__ import annotations

from collections.abc import Sequence

from onionskin.core.placement import Position
from onionskin.plugins._registry import FactoryT, PluginRegistry

_DEFAULT = PluginRegistry()


def default_registry() -> PluginRegistry:
    """The registry `register_middleware` adds to and `assemble_middleware` loads by default."""
    return _DEFAULT


def register_middleware(
    factory: FactoryT,
    *,
    name: str | None = None,
    position: Position | None = None,
    before: str | Sequence[str] = (),
    after: str | Sequence[str] = (),
    mandatory: bool = False,
    fail_open: bool = False,
) -> FactoryT:
    """Register a middleware factory in the default registry (seed 004).

    `factory(config: PluginConfig) -> middleware | None`; see
    [PluginRegistry.register_middleware][onionskin.plugins.PluginRegistry.register_middleware]
    for the arguments. Returns `factory`, so it also works as a decorator:

    ```python
    @register_middleware
    def scope_banner(config: PluginConfig) -> ScopeBannerMiddleware:
        return ScopeBannerMiddleware()
    ```
    """
    return _DEFAULT.register_middleware(
        factory,
        name=name,
        position=position,
        before=before,
        after=after,
        mandatory=mandatory,
        fail_open=fail_open,
    )
