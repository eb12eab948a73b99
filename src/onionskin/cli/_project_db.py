"""Where a project's database is: `--db`, its `onionskin.yaml`, the environment, or its folder.

The order (DESIGN: the embedded default is a SQLite file under the project directory):
`--db URL`, else `database_url` in the project's `onionskin.yaml`, else
`ONIONSKIN_DATABASE_URL`, else `DIR/.onionskin/onionskin.db`. A relative SQLite path in
`onionskin.yaml` is read from the project folder, so the same file is found whatever the
current directory.

Only `onionskin.yaml` is read here, never the project's Python files: the store commands
(`runs --project DIR`) must find the database even when a tool file is broken.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from onionskin.project import ProjectError, ProjectSettings
from onionskin.project._specs import load_spec
from onionskin.stores.schema import default_database_url

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


def project_database_url(root: Path, settings: ProjectSettings, given: str | None = None) -> str:
    """The database URL of the project at `root`, by the order in this module's docstring."""
    if given is not None:
        return given
    if settings.database_url is not None:
        return _anchored(settings.database_url, root)
    return default_database_url(root)


def _anchored(url: str, root: Path) -> str:
    """`url` with a relative SQLite file path made relative to `root`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # the stores reject it with their own message, naming the accepted forms
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return url
    database = Path(parsed.database)
    if database.is_absolute() or parsed.database == ":memory:":
        return url
    return parsed.set(database=str(root / database)).render_as_string(hide_password=False)
