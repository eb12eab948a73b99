"""The `onionskin` command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from onionskin import __version__
from onionskin.core.errors import OnionskinError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Run LLM agents through composable middleware."
)


@app.command()
def demo() -> None:
    """Run the support-desk demo on scripted models (no services, no API key)."""
    from onionskin.demo import run_demo  # imported here: only this command needs it

    asyncio.run(run_demo(Console()))


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Show onionskin's own errors as one line and exit 2, not as a traceback."""
    try:
        yield
    except OnionskinError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None


db = typer.Typer(no_args_is_help=True, help="Manage the SQL stores' schema.")
app.add_typer(db, name="db")

URL_HELP = "sqlite:///path.db or postgresql://user@host/db (default: ONIONSKIN_DATABASE_URL)"


@db.command("migrate")
def db_migrate(url: str | None = typer.Argument(None, help=URL_HELP)) -> None:
    """Apply every pending schema migration (PostgreSQL: run this when you deploy)."""
    from onionskin.stores.schema import default_database_url, migrate_all

    with _clear_errors():
        applied = asyncio.run(migrate_all(url or default_database_url()))
    console = Console()
    for component, versions in applied.items():
        done = ", ".join(map(str, versions)) if versions else "up to date"
        console.print(f"{component}: {done}")


@db.command("status")
def db_status(url: str | None = typer.Argument(None, help=URL_HELP)) -> None:
    """Show applied and known migrations per store; exit 1 when any is behind."""
    from onionskin.stores.schema import default_database_url, schema_status

    with _clear_errors():
        status = asyncio.run(schema_status(url or default_database_url()))
    console = Console()
    for component, (applied, known) in status.items():
        console.print(f"{component}: {applied}/{known}")
    if any(applied < known for applied, known in status.values()):
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print onionskin's version."""
    Console().print(__version__)


def main() -> None:
    """Entry point of the `onionskin` console script."""
    app()
