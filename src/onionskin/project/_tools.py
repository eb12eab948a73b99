"""`tools/*.py`: every public function defined in such a file is a tool, by its name."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from types import FunctionType, ModuleType

from onionskin.core.errors import ConfigError
from onionskin.project._modules import load_module
from onionskin.project.errors import ProjectError
from onionskin.runtime.tool import Tool


def _defined_functions(module: ModuleType) -> list[tuple[str, FunctionType]]:
    # Only functions the file defines: `from x import helper` must not turn `helper` into a
    # tool. `__module__` is kept by functools.wraps, so decorated functions still count.
    return [
        (name, value)
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
    ]


def load_tools(root: Path) -> dict[str, Tool]:
    """Load `root/tools/*.py` by tool name (files starting with `_` are helpers, skipped).

    Raises:
        ProjectError: a file raised on import, a function is not a valid tool, or two files
            define a tool of the same name.
    """
    tools: dict[str, Tool] = {}
    sources: dict[str, str] = {}  # tool name -> its file, to name both files of a clash
    folder = root / "tools"
    if not folder.is_dir():
        return tools
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        display = f"tools/{path.name}"
        module = load_module(root, path, display)
        for name, function in _defined_functions(module):
            if name in tools:
                raise ProjectError(
                    display,
                    f"defines a tool {name!r}, and so does {sources[name]}; rename one of them",
                    line=_first_line(function),
                    field=name,
                )
            try:
                tools[name] = Tool(function)
            except ConfigError as error:
                raise ProjectError(
                    display, str(error), line=_first_line(function), field=name
                ) from error
            sources[name] = display
    return tools


def _first_line(function: FunctionType) -> int:
    # A decorated function's own code is what the file defines, not its wrapper's.
    original = inspect.unwrap(function)
    code = getattr(original, "__code__", function.__code__)
    return int(code.co_firstlineno)


def unknown_tool_problem(name: str, tools: Mapping[str, Tool]) -> str:
    """What to say when an agent lists a tool that `tools/` does not define."""
    known = ", ".join(sorted(tools)) or "none"
    return f"no tool named {name!r} in tools/ (known: {known})"
