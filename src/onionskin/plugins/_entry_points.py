"""Finding the middleware plugins installed packages declare (seed 004)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

ENTRY_POINT_GROUP = "onionskin.middleware"
"""The entry-point group a package declares its middleware factories in."""


def discover_entry_points(group: str = ENTRY_POINT_GROUP) -> list[tuple[str, EntryPoint]]:
    """The entry points of `group` in installed packages, as (plugin name, entry point).

    Sorted by name (then by target), so that plugins load in the same order on every
    machine. Nothing is imported: `EntryPoint.load()` does that, when the plugins load.

    ```toml
    [project.entry-points."onionskin.middleware"]
    scope_banner = "my_fork.banner:scope_banner"
    ```
    """
    found = entry_points(group=group)
    return sorted(((ep.name, ep) for ep in found), key=lambda item: (item[0], item[1].value))
