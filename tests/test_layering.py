"""The layer order of DESIGN.md: core imports nothing else of onionskin."""

from __future__ import annotations

import ast
from pathlib import Path

import onionskin.core


def test_core_modules_do_not_import_outer_layers() -> None:

    core = Path(onionskin.core.__file__).parent
    offenders = []
    for path in core.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            if module.startswith("onionskin") and not module.startswith("onionskin.core"):
                offenders.append(f"{path.name}: {module}")
    assert offenders == []
