"""`onionskin init DIR`: write a working example project, then say what to run next."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from onionskin.cli._errors import CommandError, clear_errors
from onionskin.cli._output import console, say
from onionskin.cli._template import AGENT, template_files


def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The folder to create (new or empty).")
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into a folder that is not empty (the example's files replace theirs).",
        ),
    ] = False,
) -> None:
    """Create an example project that runs without an API key (agents, tool, middleware)."""
    with clear_errors():
        _check_target(directory, force=force)
        name = directory.resolve().name or "onionskin-project"
        files = template_files(name)
        for relative, text in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    out = console()
    for relative in files:
        say(out, f"created {directory / relative}")
    say(out, "")
    say(out, "next, run it:")
    say(out, f'  onionskin run {shlex.quote(str(directory))} --agent {AGENT} "Hello!"')


def _check_target(directory: Path, *, force: bool) -> None:
    """Refuse, before writing anything, a target that is a file or a folder with files in it."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise CommandError(f"{directory} exists and is not a folder; choose a new folder")
    if not force and any(directory.iterdir()):
        raise CommandError(
            f"{directory} is not empty; choose a new or empty folder, or pass --force to write "
            "the example's files into it"
        )
