"""What a store's SQL sees inside `SqlDatabase.read` / `SqlDatabase.write`: one small API.

A store's unit of work is a plain (sync) function of a `Statements`: it runs `:name`-style
SQL and gets back `Rows`, already fetched. The same function runs on SQLite's own threads
(stdlib `sqlite3`, which takes `:name` parameters as they are) and on PostgreSQL through
SQLAlchemy's sync facade of the async engine, so a store writes its SQL once for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from onionskin.core.errors import StoreError


@dataclass(frozen=True, slots=True)
class Rows:
    """A statement's result: its rows (tuples, all fetched), column names and rowcount."""

    rows: Sequence[tuple[Any, ...]] = ()
    columns: tuple[str, ...] = ()
    rowcount: int = -1
    _names: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def all(self) -> list[tuple[Any, ...]]:
        """Every row."""
        return list(self.rows)

    def first(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None when there is no row."""
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row; no row or several is a `StoreError`."""
        if len(self.rows) != 1:
            raise StoreError(f"expected exactly one row, got {len(self.rows)}")
        return self.rows[0][0]

    def mappings(self) -> list[dict[str, Any]]:
        """Every row as a dict of column name to value."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Statements(Protocol):
    """Runs SQL inside one transaction of `SqlDatabase.read` or `SqlDatabase.write`."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None, /) -> Rows:
        """Run `sql` (`:name` placeholders) with `params`; the rows, all fetched."""
        ...


def placeholders(name: str, values: Sequence[object]) -> tuple[str, dict[str, object]]:
    """`:name0, :name1, ...` and their parameters, for `IN (...)` over `values`.

    Both drivers take it as it is (SQLAlchemy's expanding parameters are SQLAlchemy's own).
    Only generated names go into the SQL; the values stay bound parameters.
    """
    params = {f"{name}{n}": value for n, value in enumerate(values)}
    return ", ".join(f":{key}" for key in params), params
