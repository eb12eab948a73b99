"""`onionskin plugins`: the middleware plugins there are, and what loading each one gives.

Plugins are the factories registered in code (`register_middleware`) and the entry points
installed packages declare in the `onionskin.middleware` group. The command loads them as
a run would (`PluginRegistry.load`, best-effort), so it shows which loaded (and the
middleware they gave), which opted out and which were skipped, with the error. With
`--project DIR` the project is loaded first (its files may register plugins) and each
plugin gets its settings from the project's `onionskin.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypedDict

import typer
from rich.text import Text

from onionskin.cli._errors import clear_errors
from onionskin.cli._logs import warnings_as_lines
from onionskin.cli._options import JsonOption
from onionskin.cli._output import add_row, console, emit_json, say, table
from onionskin.cli._project_stack import open_project
from onionskin.core.chain import inspect_middleware
from onionskin.plugins import (
    ENTRY_POINT_GROUP,
    PluginConfig,
    PluginLoadResult,
    default_registry,
    discover_entry_points,
)

PluginsProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        metavar="DIR",
        help="Load the plugins as this project's runs do, with its onionskin.yaml settings.",
        show_default=False,
    ),
]


def plugins(project: PluginsProjectOption = None, as_json: JsonOption = False) -> None:
    """List the middleware plugins (registered, and installed entry points) and how each loads."""
    # The loader's warnings are this command's rows: they are not repeated on stderr.
    with clear_errors(), warnings_as_lines(muted=("onionskin.plugins",)):
        loaded = None if project is None else open_project(project)
        registry = default_registry()
        registered = registry.names
        installed = discover_entry_points()
        config = PluginConfig(project_dir=None if loaded is None else loaded.path)
        settings = {} if loaded is None else dict(loaded.settings.plugins)
        result = registry.load(config, settings=settings)
    rows = [_row(name, "registered", None, result) for name in registered]
    for name, entry_point in installed:
        dist = entry_point.dist
        source = f"{entry_point.value}" + ("" if dist is None else f" ({dist.name})")
        clash = name in registered  # loaded under that name already: this one is skipped
        rows.append(_row(name, source, entry_point.value, result, clash=clash))
    if as_json:
        emit_json({"group": ENTRY_POINT_GROUP, "settings": settings, "plugins": rows})
        return
    out = console()
    if not rows:
        say(out, f"no middleware plugins registered or installed (group {ENTRY_POINT_GROUP})")
        return
    title = f"Middleware plugins (entry-point group {ENTRY_POINT_GROUP})"
    shown = table(title, "plugin", "source", "status", "middleware or error")
    for row in rows:
        detail = row["middleware"] or row["error"] or ""
        add_row(shown, row["name"], row["source"], _status(row["status"]), detail)
    out.print(shown)


class PluginRow(TypedDict):
    """One plugin in the listing (and in `--json`)."""

    name: str
    source: str
    """`registered`, or the entry point's target and its distribution."""
    target: str | None
    """The entry point's `module:attr` (None for a registered plugin)."""
    status: str
    """`loaded`, `opted out` or `skipped`."""
    middleware: str | None
    """The name of the middleware a loaded plugin gave."""
    error: str | None
    """Why a skipped plugin was skipped: `"ErrorType: message"`."""


def _status(status: str) -> Text:
    colour = {"loaded": "green", "opted out": "yellow", "skipped": "red"}
    return Text(status, style=colour.get(status, ""))


def _row(
    name: str, source: str, target: str | None, result: PluginLoadResult, *, clash: bool = False
) -> PluginRow:
    """One plugin's line: where it comes from and what loading it gave."""
    status, middleware, error = "not loaded", None, None
    skipped = [plugin.error for plugin in result.skipped if plugin.name == name]
    if clash:  # an entry point named as a registered plugin: skipped, the clash is its last error
        status, error = "skipped", skipped[-1] if skipped else None
    elif name in result.loaded:
        loaded = result.middleware[result.loaded.index(name)]
        status, middleware = "loaded", inspect_middleware(loaded).name
    elif name in result.opted_out:
        status = "opted out"
    elif skipped:
        status, error = "skipped", skipped[0]
    return PluginRow(
        name=name, source=source, target=target, status=status, middleware=middleware, error=error
    )
