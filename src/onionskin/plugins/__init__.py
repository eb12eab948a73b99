"""Middleware plugins (seed 004): `register_middleware(factory)` and entry points.

A plugin contributes a middleware through a factory, `factory(config: PluginConfig) ->
middleware | None` (None opts out), registered in code with `register_middleware` or
declared by an installed package in the `onionskin.middleware` entry-point group:

```toml
[project.entry-points."onionskin.middleware"]
scope_banner = "my_fork.banner:scope_banner"
```

`assemble_middleware(core, config=...)` builds an agent's list: the core middleware, then
the plugins' (registered ones in registration order, then entry points by name), then
message capture, innermost. Loading is best-effort: a plugin that fails to import, raises
or returns something that is not a middleware is skipped and logged on logger
`onionskin.plugins` with its name and the error. A plugin may declare a position
(`position="outermost"`, `before="RateLimiterMiddleware"` ...), resolved when the stack is
built; a name that matches nothing or a cycle fails the build with `ConfigError`.

Plugin middleware runs in-process with the agent's privileges: install only plugins you trust.
"""

from onionskin.plugins._assemble import assemble_middleware
from onionskin.plugins._config import PluginConfig
from onionskin.plugins._default import default_registry, register_middleware
from onionskin.plugins._entry_points import ENTRY_POINT_GROUP, discover_entry_points
from onionskin.plugins._load import MiddlewareFactory, PluginLoadResult, SkippedPlugin
from onionskin.plugins._registry import PluginRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "MiddlewareFactory",
    "PluginConfig",
    "PluginLoadResult",
    "PluginRegistry",
    "SkippedPlugin",
    "assemble_middleware",
    "default_registry",
    "discover_entry_points",
    "register_middleware",
]
