"""The options the store commands share, and where the database they read is.

The read commands (`runs`, `checkpoints`, `costs`) never create a database: a SQLite file
that is not there means nothing ran here yet (or `--db` is wrong), which is worth saying
rather than answering from a new, empty file. They also take `--project DIR`, an alias of
`--db` that names a project folder instead of a URL: they then read the database that
`onionskin run DIR ...` writes (see `onionskin.cli._project_db`). An alias rather than a
second option keeps the commands' signatures as they are; a value without `://` is a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from onionskin.cli._errors import CommandError
from onionskin.cli._project_db import project_database_url, project_dir, read_settings
from onionskin.core.errors import ConfigError, TenantError
from onionskin.core.tenant import TenantContext
from onionskin.stores._sql import normalize_url
from onionskin.stores.schema import default_database_url

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        "--project",
        metavar="URL|DIR",
        help=(
            "--db sqlite:///path.db or postgresql://user@host/db, or --project DIR for the "
            "database `onionskin run DIR` uses (default: ONIONSKIN_DATABASE_URL, else "
            ".onionskin/onionskin.db in the current directory)"
        ),
        show_default=False,
    ),
]
ProjectDbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help=(
            "sqlite:///path.db or postgresql://user@host/db (default: the project's "
            "onionskin.yaml database_url, else ONIONSKIN_DATABASE_URL, else "
            ".onionskin/onionskin.db in the project folder)"
        ),
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]


def database_url(given: str | None) -> str:
    """The URL `--db` gives (or `--project`'s), else the default one; a SQLite file must exist.

    Raises:
        ConfigError: the URL is not one the stores accept (`ProjectError`: the project's
            `onionskin.yaml` is malformed).
        CommandError: the SQLite file does not exist, or `--project` names no folder.
    """
    where = "the default database" if given is None else "--db"
    if given is None:
        url = default_database_url()
    elif "://" in given:
        url = given
    else:
        url = _project_url(given)
        where = f"the database of project {given}"
    dialect, driver_url = normalize_url(url)
    if dialect == "sqlite":
        path = Path(make_url(driver_url).database or "")
        if not path.is_file():
            raise CommandError(
                f"no onionskin database at {path} ({where}): nothing has run here yet; pass "
                "--db URL or set ONIONSKIN_DATABASE_URL"
            )
    return url


def _project_url(folder: str) -> str:
    if not Path(folder).is_dir():
        raise CommandError(
            f"--project {folder!r} is not a folder (and --db takes a URL such as "
            "sqlite:///path.db or postgresql://user@host/db)"
        )
    root = project_dir(folder)
    return project_database_url(root, read_settings(root))


def tenant_id(given: str | None) -> str | None:
    """`--tenant` checked by the rule of `TenantContext.tenant_id` (a `TenantError` otherwise)."""
    if given is None:
        return None
    try:
        return TenantContext(tenant_id=given).tenant_id
    except TenantError as error:
        # The rule's own words, naming the option the user typed rather than the field.
        raise TenantError(str(error).replace("TenantContext.tenant_id", "--tenant")) from None


def check_range(option: str, value: int, low: int, high: int) -> int:
    """`value` if `low <= value <= high`, else a `ConfigError` naming `option`."""
    if not low <= value <= high:
        raise ConfigError(f"{option} must be a whole number from {low} to {high}, got {value}")
    return value
