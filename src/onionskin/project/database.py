"""Where a project's database is: given, its `onionskin.yaml`, the environment, or its folder.

The order (DESIGN: the embedded default is a SQLite file under the project directory): a
URL given by the caller (`--db`), else `database_url` in the project's `onionskin.yaml`,
else `ONIONSKIN_DATABASE_URL`, else `DIR/.onionskin/onionskin.db`. A relative SQLite path in
`onionskin.yaml` is read from the project folder, so the same file is found whatever the
current directory. The command line and the HTTP server both find a project's database
here, so `onionskin run` and `onionskin serve` use the same file.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from onionskin.project.spec import ProjectSettings
from onionskin.stores.schema import default_database_url


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
