"""Helpers for the project commands' tests: an `init`-ed project, and reading what runs saved."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.cli.conftest import Invoke

REVIEWER_FAILS = """\
from pathlib import Path


def before(content, context):
    if (Path(__file__).parent.parent / "FAIL").exists():
        raise RuntimeError("the reviewer is out to lunch")
    return content
"""
"""A middleware file for the example's reviewer that raises while the file FAIL exists."""


def new_project(invoke: Invoke, folder: Path) -> Path:
    """`onionskin init folder` (in process); the example project's folder."""
    created = invoke("init", str(folder))
    assert created.exit_code == 0, created.output
    return folder


def failing_project(invoke: Invoke, folder: Path) -> Path:
    """The example project whose reviewer fails until its FAIL file is removed."""
    new_project(invoke, folder)
    (folder / "middleware" / "reviewer.py").write_text(REVIEWER_FAILS, encoding="utf-8")
    (folder / "FAIL").touch()
    return folder


def json_of(invoke: Invoke, *args: str) -> Any:
    """The JSON a command printed (Any: each command prints its own shape)."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


def saved(invoke: Invoke, project: Path, run_id: str, *tenant: str) -> list[dict[str, Any]]:
    """The checkpoints of `run_id` in the project's database (`*tenant`: "--tenant", "T")."""
    checkpoints: list[dict[str, Any]] = json_of(
        invoke, "checkpoints", run_id, "--project", str(project), *tenant
    )
    return checkpoints


def run_ids(invoke: Invoke, project: Path, *tenant: str) -> list[str]:
    """The ids of the runs in the project's database, newest first."""
    return [run["run_id"] for run in json_of(invoke, "runs", "--project", str(project), *tenant)]


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines of stderr (warnings about the installed test plugins left out)."""
    return [line for line in stderr.splitlines() if not line.startswith("warning: ")]


def failed_run_id(line: str) -> str:
    """The run id in a failed run's error line."""
    found = re.match(r"error: run (\S+) failed: ", line)
    assert found is not None, line
    return found.group(1)
