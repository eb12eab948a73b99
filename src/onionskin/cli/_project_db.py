"""A project folder for the store commands, and its settings: where its database is.

The database URL follows `onionskin.project.database` (`--db`, `onionskin.yaml`, the
environment, the folder). Only `onionskin.yaml` is read here, never the project's Python
files: the store commands (`runs --project DIR`) must find the database even when a tool
file is broken.
"""

from __future__ import annotations

from pathlib import Path

from onionskin.project import ProjectError, ProjectSettings
from onionskin.project._specs import load_spec
from onionskin.project.database import project_database_url

__all__ = ["SETTINGS_FILE", "project_database_url", "project_dir", "read_settings"]

SETTINGS_FILE = "onionskin.yaml"


def project_dir(given: str | Path) -> Path:
    """`given` as an absolute project folder.

    Raises:
        ProjectError: `given` is not a directory.
    """
    path = Path(given)
    if not path.is_dir():
        raise ProjectError(str(given), "is not a directory; give the project's folder")
    return path.resolve()


def read_settings(root: Path) -> ProjectSettings:
    """The settings of `root/onionskin.yaml` (defaults when the file is absent).

    Raises:
        ProjectError: the file is malformed, naming its line and field.
    """
    path = root / SETTINGS_FILE
    if not path.is_file():
        return ProjectSettings()
    settings, _ = load_spec(path, SETTINGS_FILE, ProjectSettings)
    return settings
