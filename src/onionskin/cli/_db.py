"""`onionskin db migrate` / `db status`: schema management for the SQL stores."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from onionskin.cli._errors import clear_errors

db = typer.Typer(no_args_is_help=True, help="Manage the SQL stores' schema.")

URL_HELP = "sqlite:///path.db or postgresql://user@host/db (default: ONIONSKIN_DATABASE_URL)"


@db.command("migrate")
def db_migrate(url: str | None = typer.Argument(None, help=URL_HELP)) -> None:
    """Apply every pending schema migration (PostgreSQL: run this when you deploy)."""
    from onionskin.stores.schema import default_database_url, migrate_all

    with clear_errors():
        applied = asyncio.run(migrate_all(url or default_database_url()))
    console = Console()
    for component, versions in applied.items():
        done = ", ".join(map(str, versions)) if versions else "up to date"
        console.print(f"{component}: {done}")


@db.command("status")
def db_status(url: str | None = typer.Argument(None, help=URL_HELP)) -> None:
    """Show applied and known migrations per store; exit 1 when any is behind."""
    from onionskin.stores.schema import default_database_url, schema_status

    with clear_errors():
        status = asyncio.run(schema_status(url or default_database_url()))
    console = Console()
    for component, (applied, known) in status.items():
        console.print(f"{component}: {applied}/{known}")
    if any(applied < known for applied, known in status.values()):
        raise typer.Exit(1)
