"""The cost ledger: what every model call cost, per tenant and UTC calendar month.

Append-only and keyed by call id per tenant, in whole micro-dollars (DEPENDENCIES lesson 4):
recording a call twice counts it once, so a retried write never bills twice. Periods are
UTC calendar months named in the key (`"2026-11"`): a new month starts from zero with no
reset job, and an alert is claimed once per tenant, threshold and period across every
worker (lesson 5). `record_many` writes a batch of one tenant's calls atomically (a flush
of buffered entries, an import). `MemoryCostLedger` is the reference; `SqlCostLedger`
(`onionskin.stores.sql_ledger`) keeps the same contract on SQLite and PostgreSQL.

Over 200 lines: the entry's checks, the protocol and the memory backend, which every other
backend is tested against, are read together.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from onionskin.core.errors import ConfigError, StoreError, TenantError
from onionskin.core.tenant import TenantContext

MAX_ID_LENGTH = 200
"""The longest call id, run id, agent or model name an entry accepts."""
MAX_LIMIT = 1000
"""The most entries one `entries()` call returns."""
MAX_BATCH = 500
"""The most entries one `record_many()` call takes."""
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_EMPTY: Mapping[str, int] = MappingProxyType({})


def period_of(moment: datetime) -> str:
    """The UTC calendar month `moment` falls in, as a period label: `"2026-11"`."""
    return f"{moment.astimezone(UTC):%Y-%m}"


def check_tenant(tenant_id: object) -> None:
    """A tenant id is None (runs without a tenant) or valid as `TenantContext.tenant_id`."""
    if tenant_id is None:
        return
    if not isinstance(tenant_id, str):
        raise TenantError(f"a tenant id is a string or None, got {tenant_id!r}")
    TenantContext(tenant_id=tenant_id)  # the one rule for tenant ids; raises TenantError


def check_name(owner: str, field: str, value: object, *, optional: bool = False) -> None:
    """`value` is a non-empty str of at most `MAX_ID_LENGTH` characters (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        what = "None or " if optional else ""
        raise ConfigError(
            f"{owner}.{field} must be {what}a non-empty string of at most {MAX_ID_LENGTH} "
            f"characters, got {value!r}"
        )


def check_count(owner: str, field: str, value: object) -> None:
    """`value` is an int >= 0 (not a bool): a token count or micro-dollars."""
    if type(value) is not int or value < 0:
        raise ConfigError(f"{owner}.{field} must be a whole number >= 0, got {value!r}")


def check_period(period: object) -> None:
    """`period` is a month label, `"YYYY-MM"`."""
    if not isinstance(period, str) or not _PERIOD.fullmatch(period):
        raise ConfigError(f"a cost period is a UTC month written YYYY-MM, got {period!r}")


def check_query(tenant_id: object, period: object) -> None:
    """The tenant and period of a read or an alert claim are well formed."""
    check_tenant(tenant_id)
    check_period(period)


def check_threshold(threshold_pct: object) -> None:
    """An alert threshold is a whole percentage of the budget, 1 to 1000."""
    if type(threshold_pct) is not int or not 1 <= threshold_pct <= 1000:
        raise ConfigError(f"an alert threshold is an int percentage 1..1000, got {threshold_pct!r}")


def check_limit(limit: object) -> None:
    """A page size is an int from 1 to `MAX_LIMIT`."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be an int from 1 to {MAX_LIMIT}, got {limit!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CostEntry:
    """One model call's cost: a line of the ledger, immutable once recorded."""

    call_id: str
    """Unique per tenant: recording the same call id again counts once."""
    tenant_id: str | None
    """The tenant billed; None for calls outside any tenant."""
    run_id: str | None
    agent: str | None
    """The agent that made the call, when known."""
    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    """What the call cost, in whole micro-dollars (rounded up from the exact price)."""
    recorded_at: datetime
    """When the call was recorded; timezone-aware, kept in UTC."""
    period: str = ""
    """The UTC month of `recorded_at` (`"2026-11"`); filled in when left empty."""

    def __post_init__(self) -> None:
        check_name("CostEntry", "call_id", self.call_id)
        check_tenant(self.tenant_id)
        check_name("CostEntry", "run_id", self.run_id, optional=True)
        check_name("CostEntry", "agent", self.agent, optional=True)
        check_name("CostEntry", "model", self.model)
        for name in ("input_tokens", "output_tokens", "cost_micros"):
            check_count("CostEntry", name, getattr(self, name))
        moment: object = self.recorded_at  # object: values may come from JSON or a database
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ConfigError(
                f"CostEntry.recorded_at must be a timezone-aware datetime, got {moment!r}"
            )
        object.__setattr__(self, "recorded_at", moment.astimezone(UTC))
        derived = period_of(moment)
        if self.period == "":
            object.__setattr__(self, "period", derived)
        elif self.period != derived:
            raise ConfigError(
                f"CostEntry.period {self.period!r} is not the UTC month of its recorded_at "
                f"({derived!r}); leave period empty to have it filled in"
            )

    def same_call(self, other: CostEntry) -> bool:
        """Whether `other` records the same call: equal in all but when it was recorded."""
        return (
            self.call_id,
            self.tenant_id,
            self.run_id,
            self.agent,
            self.model,
            self.input_tokens,
            self.output_tokens,
            self.cost_micros,
        ) == (
            other.call_id,
            other.tenant_id,
            other.run_id,
            other.agent,
            other.model,
            other.input_tokens,
            other.output_tokens,
            other.cost_micros,
        )


def conflict(entry: CostEntry) -> StoreError:
    """The error for a call id recorded again with different content (nothing is changed)."""
    return StoreError(
        f"call id {entry.call_id!r} is already in the ledger with different content; a call "
        "is recorded once: give each model call its own call id"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOutcome:
    """What `CostLedger.record` did, and the tenant's period total right after it."""

    recorded: bool
    """False when the call id was already in the ledger (then nothing changed)."""
    entry: CostEntry
    """The entry as the ledger holds it: the first recording's, for a repeated call id."""
    period_total_micros: int
    """The tenant's total for the entry's period after the write, read atomically with it."""


def unique_entries(entries: object) -> list[CostEntry]:
    """The distinct calls of a batch, in order; refuse a malformed batch before any write.

    A batch is a sequence of at most `MAX_BATCH` entries of one tenant; a call id may repeat
    in it only with the same content.
    """
    if not isinstance(entries, Sequence) or len(entries) > MAX_BATCH:
        raise ConfigError(f"record_many() takes a list of at most {MAX_BATCH} CostEntry values")
    first: dict[str, CostEntry] = {}
    for entry in entries:
        if not isinstance(entry, CostEntry):
            raise ConfigError(f"the ledger records CostEntry values, got {entry!r}")
        if entry.tenant_id != entries[0].tenant_id:
            raise ConfigError("a batch of cost entries must all belong to one tenant")
        seen = first.setdefault(entry.call_id, entry)
        if not seen.same_call(entry):
            raise conflict(entry)
    return list(first.values())


def outcomes(
    entries: Sequence[CostEntry],
    held: Mapping[str, CostEntry],
    inserted: set[str],
    totals: Mapping[str, int],
) -> list[RecordOutcome]:
    """One outcome per entry of a batch: only a call id's first new occurrence is recorded."""
    results: list[RecordOutcome] = []
    counted: set[str] = set()
    for entry in entries:
        new = entry.call_id in inserted and entry.call_id not in counted
        counted.add(entry.call_id)
        total = totals[entry.period]
        results.append(
            RecordOutcome(recorded=new, entry=held[entry.call_id], period_total_micros=total)
        )
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class CostTotals:
    """A tenant's spend in one period: the total, the calls, and who and what spent it."""

    tenant_id: str | None
    period: str
    total_micros: int = 0
    calls: int = 0
    by_agent: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Micro-dollars per agent; calls made outside an agent count under `""`."""
    by_model: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Micro-dollars per model name."""


@runtime_checkable
class CostLedger(Protocol):
    """Where the cost of every model call is kept, per tenant and period."""

    async def record(self, entry: CostEntry) -> RecordOutcome:
        """Append `entry` unless its call id is already there (a different one: StoreError)."""
        ...

    async def record_many(self, entries: Sequence[CostEntry]) -> list[RecordOutcome]:
        """Record a batch of one tenant's entries atomically: all of them or, on error, none."""
        ...

    async def spent(self, *, tenant_id: str | None, period: str) -> int:
        """The tenant's total for `period`, in micro-dollars."""
        ...

    async def totals(self, *, tenant_id: str | None, period: str) -> CostTotals:
        """The tenant's total, calls and breakdowns for `period`."""
        ...

    async def entries(
        self, *, tenant_id: str | None, period: str, limit: int = 100
    ) -> list[CostEntry]:
        """The tenant's entries of `period`, newest first, at most `limit`."""
        ...

    async def claim_alert(self, *, tenant_id: str | None, threshold_pct: int, period: str) -> bool:
        """True exactly once per tenant, threshold and period, across every worker."""
        ...

    async def aclose(self) -> None:
        """Release the ledger's connections, if any."""
        ...


def build_totals(
    tenant_id: str | None, period: str, rows: list[tuple[str | None, str, int, int]]
) -> CostTotals:
    """Fold `(agent, model, micros, calls)` groups into a tenant's `CostTotals`."""
    by_agent: dict[str, int] = {}
    by_model: dict[str, int] = {}
    calls = 0
    for agent, model, micros, count in rows:
        by_agent[agent or ""] = by_agent.get(agent or "", 0) + micros
        by_model[model] = by_model.get(model, 0) + micros
        calls += count
    return CostTotals(
        tenant_id=tenant_id,
        period=period,
        total_micros=sum(by_model.values()),
        calls=calls,
        by_agent=MappingProxyType(by_agent),
        by_model=MappingProxyType(by_model),
    )


class MemoryCostLedger:
    """The ledger of one process, in memory: the default, and the reference backend."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], CostEntry] = {}
        self._periods: dict[tuple[str, str], list[CostEntry]] = {}
        self._sums: dict[tuple[str, str], int] = {}
        self._alerts: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()  # a ledger may be shared by loops in several threads

    async def record(self, entry: CostEntry) -> RecordOutcome:
        """Append `entry` unless its call id is already there (a different one: StoreError)."""
        if not isinstance(entry, CostEntry):
            raise ConfigError(f"record() takes a CostEntry, got {entry!r}")
        return (await self.record_many([entry]))[0]

    async def record_many(self, entries: Sequence[CostEntry]) -> list[RecordOutcome]:
        """Record a batch of one tenant's entries atomically: all of them or, on error, none."""
        batch = unique_entries(entries)
        if not batch:
            return []
        tenant = batch[0].tenant_id or ""
        with self._lock:
            held: dict[str, CostEntry] = {}
            for entry in batch:  # every conflict is found before anything changes
                stored = self._entries.get((tenant, entry.call_id))
                if stored is not None and not stored.same_call(entry):
                    raise conflict(entry)
                held[entry.call_id] = stored or entry
            inserted = {e.call_id for e in batch if (tenant, e.call_id) not in self._entries}
            for entry in batch:
                if entry.call_id in inserted:
                    key = (tenant, entry.period)
                    self._entries[(tenant, entry.call_id)] = entry
                    self._periods.setdefault(key, []).append(entry)
                    self._sums[key] = self._sums.get(key, 0) + entry.cost_micros
            totals = {e.period: self._sums.get((tenant, e.period), 0) for e in entries}
        return outcomes(entries, held, inserted, totals)

    async def spent(self, *, tenant_id: str | None, period: str) -> int:
        """The tenant's total for `period`, in micro-dollars."""
        check_query(tenant_id, period)
        with self._lock:
            return self._sums.get((tenant_id or "", period), 0)

    async def totals(self, *, tenant_id: str | None, period: str) -> CostTotals:
        """The tenant's total, calls and breakdowns for `period`."""
        check_query(tenant_id, period)
        with self._lock:
            rows = [
                (e.agent, e.model, e.cost_micros, 1)
                for e in self._periods.get((tenant_id or "", period), ())
            ]
        return build_totals(tenant_id, period, rows)

    async def entries(
        self, *, tenant_id: str | None, period: str, limit: int = 100
    ) -> list[CostEntry]:
        """The tenant's entries of `period`, newest first, at most `limit`."""
        check_query(tenant_id, period)
        check_limit(limit)
        with self._lock:
            found = list(self._periods.get((tenant_id or "", period), ()))
        found.sort(key=lambda e: (e.recorded_at, e.call_id), reverse=True)
        return found[:limit]

    async def claim_alert(self, *, tenant_id: str | None, threshold_pct: int, period: str) -> bool:
        """True exactly once per tenant, threshold and period."""
        check_query(tenant_id, period)
        check_threshold(threshold_pct)
        key = (tenant_id or "", period, threshold_pct)
        with self._lock:
            if key in self._alerts:
                return False
            self._alerts.add(key)
            return True

    async def aclose(self) -> None:
        """Nothing to release."""
