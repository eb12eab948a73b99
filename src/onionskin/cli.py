"""The `onionskin` command."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from onionskin import __version__

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Run LLM agents through composable middleware."
)


@app.command()
def demo() -> None:
    """Run the support-desk demo on scripted models (no services, no API key)."""
    from onionskin.demo import run_demo  # imported here: only this command needs it

    asyncio.run(run_demo(Console()))


@app.command()
def version() -> None:
    """Print onionskin's version."""
    Console().print(__version__)


def main() -> None:
    """Entry point of the `onionskin` console script."""
    app()
