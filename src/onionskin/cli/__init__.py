"""The `onionskin` command: one module per command group, assembled here.

Every command prints one clear line on stderr when it fails and exits non-zero
(`onionskin.cli._errors`); the global `--debug` shows the traceback instead. Each command
imports what it needs when it runs, so `onionskin --help` stays quick.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from onionskin import __version__
from onionskin.cli._costs import costs
from onionskin.cli._db import db
from onionskin.cli._errors import clear_errors, set_debug
from onionskin.cli._explain import explain
from onionskin.cli._init import init
from onionskin.cli._plugins import plugins
from onionskin.cli._replay import replay
from onionskin.cli._run import run
from onionskin.cli._runs import checkpoints, runs
from onionskin.cli._serve import serve
from onionskin.cli._trace import trace

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Run LLM agents through composable middleware.",
    # With --debug a failure shows Python's own traceback: complete, and without the
    # local variables rich would print (a database URL may hold a password).
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="ONIONSKIN_DEBUG",
            help="Show the full traceback of an error instead of one line.",
        ),
    ] = False,
) -> None:
    """Run LLM agents through composable middleware."""
    set_debug(debug)


@app.command()
def demo() -> None:
    """Run the support-desk demo on scripted models (no services, no API key)."""
    from onionskin.demo import run_demo  # imported here: only this command needs it

    with clear_errors():
        asyncio.run(run_demo(Console()))


app.command("init")(init)
app.command("run")(run)
app.command("replay")(replay)
app.command("plugins")(plugins)
app.command("explain")(explain)
app.command("serve")(serve)
app.add_typer(db, name="db")
app.command("runs")(runs)
app.command("checkpoints")(checkpoints)
app.command("costs")(costs)
app.add_typer(trace, name="trace")


@app.command()
def version() -> None:
    """Print onionskin's version."""
    Console().print(__version__)


def main() -> None:
    """Entry point of the `onionskin` console script."""
    app()
