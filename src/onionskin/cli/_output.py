"""How the commands print: JSON for scripts, and times and money as tables show them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Any JSON value a command prints (kept loose: each command builds its own documents).
JsonValue = object

NO_TENANT = "(no tenant)"
"""How a table shows the partition of runs and calls without a tenant."""


def emit_json(document: JsonValue) -> None:
    """Print one JSON document on stdout (plain text: no markup, no wrapping)."""
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def console() -> Console:
    """The console tables go to: stdout, highlighting off (the columns carry the colour)."""
    return Console(highlight=False)


def say(out: Console, text: str) -> None:
    """Print `text` as written (no markup) on one line, however narrow the terminal."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    """A table with `columns`; those in `right` are right-aligned (numbers)."""
    made = Table(title=escape(title), title_justify="left")
    for column in columns:
        made.add_column(column, justify="right" if column in right else "left")
    return made


def add_row(shown: Table, *cells: str | Text) -> None:
    """Add a row whose text cells are shown as written (ids, names and outputs are not markup)."""
    shown.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def status_text(status: str) -> Text:
    """A run's or call's status, coloured: green when it went well, red when it failed."""
    colour = {"completed": "green", "ok": "green", "failed": "red", "error": "red"}
    return Text(status, style=colour.get(status, "yellow"))


def iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 (for JSON)."""
    return moment.astimezone(UTC).isoformat()


def shown_time(moment: datetime, *, millis: bool = False) -> str:
    """`moment` in UTC as tables show it: `2026-11-05 12:00:00` (or `...:00.123`)."""
    text = moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f" if millis else "%Y-%m-%d %H:%M:%S"
    )
    return text[:-3] if millis else text


def usd(micros: int) -> str:
    """Whole micro-dollars as exact USD with six decimals: `12345` is `"0.012345"`."""
    # Decimal, never float: the ledger's integers are shown digit for digit.
    return f"{Decimal(micros).scaleb(-6):.6f}"


def tenant_label(tenant: str | None) -> str:
    """A tenant id as tables show it."""
    return NO_TENANT if tenant is None else tenant


def clip(text: str, width: int = 60) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
