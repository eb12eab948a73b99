"""Loading a project's Python files (`tools/*.py`, `middleware/*.py`) as modules.

Each file becomes a module of its own under a name unique to its project directory, so two
projects with a `tools/search.py` each never share or replace each other's module. The
module is registered in `sys.modules` (dataclasses, pickling and `typing.get_type_hints`
look modules up there); `sys.path` is left alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from onionskin.project.errors import ProjectError


def module_name(root: Path, display: str) -> str:
    """The module name of the project file `display` in project `root`."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", display.removesuffix(".py"))
    return f"_onionskin_project_{digest}_{stem}"


def _line_in(error: BaseException, path: Path) -> int | None:
    if isinstance(error, SyntaxError) and error.filename == str(path):
        return error.lineno
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == str(path)]
    return lines[-1] if lines else None


def load_module(root: Path, path: Path, display: str) -> ModuleType:
    """Execute the file `path` of project `root` as a fresh module.

    Raises:
        ProjectError: the file raised while it was imported (with the line, when known).
    """
    name = module_name(root, display)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for non-.py paths
        raise ProjectError(display, "cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        # A broken file must not stay half-imported under its name.
        sys.modules.pop(name, None)
        raise ProjectError(
            display,
            f"raised {type(error).__name__} while being imported: {error}",
            line=_line_in(error, path),
        ) from error
    return module
