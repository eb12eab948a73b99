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


def test_importing_onionskin_loads_no_optional_backend() -> None:
    """Redis stores live in their own modules: `import onionskin` must not need the extra."""
    import subprocess
    import sys

    probe = (
        "import sys, onionskin, onionskin.stores, onionskin.middleware, onionskin.testing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'psycopg', 'fastapi'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
