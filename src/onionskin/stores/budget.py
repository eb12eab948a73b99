"""The budget reservation ledger: the `BudgetStore` protocol and its in-memory backend.

A call first *reserves* its estimate on every budget line it counts against (run, session,
tenant period ...) in one atomic step: all lines admit it or none holds anything. After the
call it is *settled* to the actual amount, which goes into each line's append-only ledger
keyed by the reservation id, or *released* when the call failed. Both are idempotent: the
first one ends the reservation, later ones change nothing (DEPENDENCIES lessons 1, 2, 4).
A hold that nobody settles expires after its ttl and stops counting; expired holds are
dropped lazily, when their line is next touched. Amounts are whole micro-dollars.

Over 200 lines: the protocol, its value types and the memory backend, which is the
reference every other backend is tested against, are read together.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from onionskin.core.clock import SYSTEM_CLOCK, Clock

RECORD_GRACE = 3600.0
"""Seconds a reservation can still be settled after its hold expired (a slow call's bill)."""
_SWEEP_EVERY = 60.0
_STALE_EXPIRIES = 64
"""Expiries of ended holds a line's heap may carry, beyond twice its live holds."""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget a call counts against: its key, its limit, how long its state is kept."""

    key: str
    """Where the line's spend is kept, tenant first (`"acme:tenant:day:2026-11-05"`)."""
    limit_micros: int | None = None
    """The most the line may commit, settled plus held; None tracks without limiting."""
    keep_for: float | None = None
    """Seconds the line's state is kept after its last write; None keeps it for good."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a reservation was refused: the first line it would have overdrawn."""

    key: str
    limit_micros: int
    spent_micros: int
    """Settled on the line so far."""
    held_micros: int
    """Reserved on the line by calls still running."""


@runtime_checkable
class BudgetStore(Protocol):
    """Where budgets keep their reservations, spend and claimed alerts."""

    async def reserve(
        self, reservation_id: str, lines: Sequence[BudgetLine], amount_micros: int, ttl: float
    ) -> Refusal | None:
        """Hold `amount_micros` on every line, or on none; None when admitted.

        Reserving an id that is already held admits it again without a second hold.
        """
        ...

    async def settle(self, reservation_id: str, actual_micros: int) -> Mapping[str, int] | None:
        """Charge `actual_micros` to the reservation's lines; their new spend by key.

        None when the reservation was already settled, released or forgotten.
        """
        ...

    async def release(self, reservation_id: str) -> bool:
        """Drop the reservation without charging it; False if it had already ended."""
        ...

    async def spent(self, key: str) -> int:
        """Micro-dollars settled on line `key`."""
        ...

    async def held(self, key: str) -> int:
        """Micro-dollars reserved on line `key` by unexpired, unsettled reservations."""
        ...

    async def ledger(self, key: str) -> dict[str, int]:
        """Line `key`'s ledger: the settled amount of each reservation id."""
        ...

    async def claim_alert(self, key: str, threshold: str) -> bool:
        """True exactly once per line `key` and `threshold`, across every worker."""
        ...


def check_reservation(lines: Sequence[BudgetLine], amount_micros: int, ttl: float) -> None:
    """Refuse a malformed reservation before it reaches any store (nothing is changed)."""
    # Checked on every admission: a plain loop rather than all() over a generator, and
    # a set only when there are several keys to tell apart.
    if not lines:
        raise ValueError("a reservation needs at least one BudgetLine")
    for line in lines:
        if not isinstance(line, BudgetLine):
            raise ValueError("a reservation needs at least one BudgetLine")
    if len(lines) > 1 and len({line.key for line in lines}) != len(lines):
        raise ValueError("a reservation's lines need distinct keys")
    check_amount(amount_micros)
    if not ttl > 0:
        raise ValueError(f"a reservation's ttl must be > 0 seconds, got {ttl!r}")


def check_amount(micros: int) -> None:
    """An amount is a whole number of micro-dollars >= 0."""
    if type(micros) is not int or micros < 0:
        raise ValueError(f"amounts are whole micro-dollars >= 0, got {micros!r}")


@dataclass(slots=True)
class _Line:
    spent: int = 0
    held: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)
    expiries: list[tuple[float, str]] = field(default_factory=list)  # a heap
    ledger: dict[str, int] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)
    drop_at: float | None = None

    def purge(self, now: float) -> None:
        while self.expiries and self.expiries[0][0] <= now:
            expires, rid = heapq.heappop(self.expiries)
            hold = self.holds.get(rid)
            if hold is not None and hold[1] == expires:
                self.drop(rid)

    def drop(self, rid: str) -> None:
        hold = self.holds.pop(rid, None)
        if hold is not None:
            self.held -= hold[0]

    def add(self, rid: str, micros: int, expires: float) -> None:
        self.holds[rid] = (micros, expires)
        self.held += micros
        expiries = self.expiries
        # A settled hold leaves its expiry in the heap until that time comes (ttl, ten
        # minutes by default): rebuild from the live holds once those stale entries
        # dominate, so that a busy line's heap stays as small as its running calls.
        if len(expiries) > 2 * len(self.holds) + _STALE_EXPIRIES:
            expiries[:] = [(at, held) for held, (_, at) in self.holds.items()]
            heapq.heapify(expiries)
        else:
            heapq.heappush(expiries, (expires, rid))


_Record = tuple[tuple[BudgetLine, ...], float]
"""A reservation's lines and when it is forgotten: a plain tuple, since one is made per
reservation and a frozen dataclass or named tuple costs several times as much to make."""


class MemoryBudgetStore:
    """Budgets of one process, in memory: the default, and the reference for every backend."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._lines: dict[str, _Line] = {}
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()  # a store may be shared by loops in several threads
        self._next_sweep = clock.monotonic() + _SWEEP_EVERY

    def _line(self, line: BudgetLine, now: float) -> _Line:
        state = self._lines.get(line.key)
        if state is None or (state.drop_at is not None and state.drop_at <= now):
            state = self._lines[line.key] = _Line()
        state.drop_at = None if line.keep_for is None else now + line.keep_for
        expiries = state.expiries
        if expiries and expiries[0][0] <= now:
            state.purge(now)
        return state

    async def reserve(
        self, reservation_id: str, lines: Sequence[BudgetLine], amount_micros: int, ttl: float
    ) -> Refusal | None:
        """Hold `amount_micros` on every line, or on none; None when admitted."""
        return self.reserve_nowait(reservation_id, lines, amount_micros, ttl)

    def reserve_nowait(
        self, reservation_id: str, lines: Sequence[BudgetLine], amount_micros: int, ttl: float
    ) -> Refusal | None:
        """`reserve`, from sync code: this store never waits (a guard saves a coroutine)."""
        check_reservation(lines, amount_micros, ttl)
        with self._lock:
            now = self.clock.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
            if reservation_id in self._records:
                return None
            # Every line is touched (kept, purged) before any is checked. A loop, not a
            # comprehension: Python 3.11 builds a function for each comprehension it runs.
            states: list[_Line] = []
            for line in lines:
                states.append(self._line(line, now))
            for line, state in zip(lines, states, strict=True):
                limit = line.limit_micros
                if limit is not None and state.spent + state.held + amount_micros > limit:
                    spent, held = state.spent, state.held
                    return Refusal(
                        key=line.key, limit_micros=limit, spent_micros=spent, held_micros=held
                    )
            expires = now + ttl
            for state in states:
                state.add(reservation_id, amount_micros, expires)
            self._records[reservation_id] = (tuple(lines), expires + RECORD_GRACE)
        return None

    async def settle(self, reservation_id: str, actual_micros: int) -> Mapping[str, int] | None:
        """Charge `actual_micros` to the reservation's lines; their new spend by key."""
        return self.settle_nowait(reservation_id, actual_micros)

    def settle_nowait(self, reservation_id: str, actual_micros: int) -> Mapping[str, int] | None:
        """`settle`, from sync code."""
        check_amount(actual_micros)
        with self._lock:
            now = self.clock.monotonic()
            lines = self._end(reservation_id, now)
            if lines is None:
                return None
            totals: dict[str, int] = {}
            for line in lines:
                state = self._line(line, now)
                state.drop(reservation_id)
                if reservation_id not in state.ledger:
                    state.ledger[reservation_id] = actual_micros
                    state.spent += actual_micros
                totals[line.key] = state.spent
            return totals

    async def release(self, reservation_id: str) -> bool:
        """Drop the reservation without charging it; False if it had already ended."""
        return self.release_nowait(reservation_id)

    def release_nowait(self, reservation_id: str) -> bool:
        """`release`, from sync code."""
        with self._lock:
            lines = self._end(reservation_id, self.clock.monotonic())
            if lines is None:
                return False
            for line in lines:
                state = self._lines.get(line.key)
                if state is not None:
                    state.drop(reservation_id)
            return True

    async def spent(self, key: str) -> int:
        """Micro-dollars settled on line `key`."""
        with self._lock:
            state = self._current(key)
            return 0 if state is None else state.spent

    async def held(self, key: str) -> int:
        """Micro-dollars reserved on line `key` by unexpired, unsettled reservations."""
        with self._lock:
            state = self._current(key)
            return 0 if state is None else state.held

    async def ledger(self, key: str) -> dict[str, int]:
        """Line `key`'s ledger: the settled amount of each reservation id."""
        with self._lock:
            state = self._current(key)
            return {} if state is None else dict(state.ledger)

    async def claim_alert(self, key: str, threshold: str) -> bool:
        """True exactly once per line `key` and `threshold`."""
        with self._lock:
            state = self._current(key)
            if state is None:
                state = self._lines[key] = _Line()
            if threshold in state.alerts:
                return False
            state.alerts.add(threshold)
            return True

    def _current(self, key: str) -> _Line | None:
        now = self.clock.monotonic()
        state = self._lines.get(key)
        if state is None or (state.drop_at is not None and state.drop_at <= now):
            return None
        state.purge(now)
        return state

    def _end(self, reservation_id: str, now: float) -> tuple[BudgetLine, ...] | None:
        record = self._records.pop(reservation_id, None)
        if record is None or record[1] <= now:
            return None
        return record[0]

    def _sweep(self, now: float) -> None:
        # Forget lines past their keep_for and reservations nobody settled, now and then,
        # so that a long-lived process does not keep every finished run's line.
        self._next_sweep = now + _SWEEP_EVERY
        self._lines = {
            key: s for key, s in self._lines.items() if s.drop_at is None or s.drop_at > now
        }
        self._records = {rid: r for rid, r in self._records.items() if r[1] > now}
