"""Rate-limit state: the `RateLimitStore` protocol, its values, and the in-memory store.

The limiter is GCRA (the generic cell rate algorithm, a token bucket kept as one number):
a bucket's state is its *theoretical arrival time* (TAT), the moment it would be full again.
A charge of `cost` tokens at `now` moves the TAT to `max(TAT, now) + cost / rate`, and is
admitted when that lies at most `burst / rate` ahead of `now`. So at most
`burst + rate * elapsed` tokens are ever admitted, and an idle bucket needs no state at all.

`acquire` checks every charge (tenant, user and model limits together) in one atomic step
and takes all or nothing; `adjust` reconciles a reservation to the actual afterwards (a
positive cost charges more, a negative one refunds) and is never refused.

Written here, not taken from a library (DEPENDENCIES.md): none reserves an estimate and
adjusts it to the actual, uses the Redis server's clock, and checks tenant + user + model
limits in one atomic step. `redis_rate_limit.py` runs the same state machine as Lua.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError

TOLERANCE = 1e-6
"""Seconds of float rounding forgiven at admission: one microsecond, Redis `TIME`'s grain."""

_SWEEP_EVERY = 1024


def _finite(value: object) -> float | None:
    # Typed as object: a store may be called with values that never met a type checker.
    # A tuple, not `int | float`: that union is built anew on every call, and every Charge
    # checks three numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _number(field: str, value: object, *, positive: bool) -> None:
    number = _finite(value)
    if number is None or (positive and number <= 0):
        bound = " > 0" if positive else ""
        raise ConfigError(f"Charge.{field} must be a finite number{bound}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """Tokens to take from (or, with a negative `cost` in `adjust`, give back to) one bucket."""

    key: str
    """The bucket, tenant first (`tenant:acme:user:bob:calls`)."""
    rate: float
    """Tokens the bucket regains per second."""
    burst: float
    """Tokens the bucket holds when full: what may be taken at once."""
    cost: float
    """Tokens this call takes (`acquire`), or the correction (`adjust`)."""

    def __post_init__(self) -> None:
        key: object = self.key  # object: values may come from untyped callers
        if not isinstance(key, str) or not key:
            raise ConfigError(f"Charge.key must be a non-empty string, got {self.key!r}")
        _number("rate", self.rate, positive=True)
        _number("burst", self.burst, positive=True)
        _number("cost", self.cost, positive=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """The answer to `acquire`: admitted, or when to try again and which bucket refused."""

    allowed: bool
    retry_after: float = 0.0
    """Seconds until the refused charges would fit (`inf` if a cost exceeds its burst)."""
    key_that_refused: str | None = None
    """The bucket that needs the longest wait, when refused."""


ADMITTED = Admission(allowed=True)


class RateLimitStore(Protocol):
    """Where rate-limit buckets live; every operation is atomic across its charges."""

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        """Take every charge's cost, or none of them if any bucket lacks the tokens."""
        ...

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Charge extra (cost > 0) or refund (cost < 0) after the call; never refused."""
        ...


def check_charges(charges: Sequence[Charge], *, acquiring: bool) -> None:
    """Refuse what no store can do atomically: duplicate keys, or negative costs to acquire.

    Raises:
        ValueError: naming the bad charge; no bucket was touched.
    """
    if len(charges) == 1:
        # The common case (one limit) needs no set to find duplicates in.
        if acquiring and charges[0].cost < 0:
            _refuse_negative(charges[0])
        return
    seen: set[str] = set()
    for charge in charges:
        if charge.key in seen:
            raise ValueError(f"bucket {charge.key!r} is charged twice in one operation")
        seen.add(charge.key)
        if acquiring and charge.cost < 0:
            _refuse_negative(charge)


def _refuse_negative(charge: Charge) -> None:
    raise ValueError(
        f"acquire needs costs >= 0, got {charge.cost!r} for {charge.key!r}; "
        "give tokens back with adjust"
    )


def plan_acquire(
    charges: Sequence[Charge], now: float, tat_of: Callable[[str], float | None]
) -> tuple[Admission, list[float]]:
    """Decide an acquisition: the admission and, if admitted, each bucket's new TAT.

    The Lua script in `redis_rate_limit.py` is a transcription of this function.
    """
    new_tats: list[float] = []
    refused_key, longest = None, 0.0
    for charge in charges:
        cost, rate = charge.cost, charge.rate
        if cost > charge.burst:
            wait = math.inf  # could never fit, however long the caller waits
            new_tat = now
        else:
            tat = tat_of(charge.key)
            new_tat = (now if tat is None or tat < now else tat) + cost / rate  # see _start
            wait = new_tat - charge.burst / rate - now
        if wait > TOLERANCE and wait > longest:
            refused_key, longest = charge.key, wait
        new_tats.append(new_tat)
    if refused_key is not None:
        return Admission(allowed=False, retry_after=longest, key_that_refused=refused_key), []
    return ADMITTED, new_tats


def adjusted_tat(tat: float | None, now: float, charge: Charge) -> float:
    """A bucket's TAT after `adjust`; at or before `now` means the bucket is full."""
    return _start(tat, now) + charge.cost / charge.rate


def _start(tat: float | None, now: float) -> float:
    # A TAT in the past means a full bucket: it counts from now, not from then. Written out
    # in `plan_acquire`'s loop (a call per charge), and not as max() (a builtin call).
    return now if tat is None or tat < now else tat


class MemoryRateLimitStore:
    """Buckets in this process's memory (the default): one limit per process.

    Reads `clock.monotonic()`, so tests drive it with a `FakeClock`. Full buckets are
    forgotten, so idle keys cost no memory.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._writes = 0

    def acquire_nowait(self, charges: Sequence[Charge]) -> Admission:
        """`acquire` without awaiting: memory has nothing to wait for.

        Guards call this on their hot path to spare every admitted call a coroutine.

        Raises:
            ValueError: for a duplicate key or a negative cost; no bucket was touched.
        """
        if len(charges) != 1 or charges[0].cost < 0:
            check_charges(charges, acquiring=True)  # one charge costing >= 0 always passes
        now = self._clock.monotonic()
        tats = self._tats
        admission, new_tats = plan_acquire(charges, now, tats.get)
        # enumerate, not zip(strict=False): a keyword argument sends zip down a slow path.
        for index, tat in enumerate(new_tats):
            charge = charges[index]
            if tat > now:
                tats[charge.key] = tat
            else:
                tats.pop(charge.key, None)
        self._writes += len(new_tats)  # counted here, not in a call: this is the hot path
        if self._writes >= _SWEEP_EVERY:
            self._sweep(now)
        return admission

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        """Take every charge's cost, or none of them if any bucket lacks the tokens."""
        return self.acquire_nowait(charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Charge extra (cost > 0) or refund (cost < 0) after the call; never refused."""
        check_charges(charges, acquiring=False)
        now = self._clock.monotonic()
        tats = self._tats
        for charge in charges:
            tat = adjusted_tat(tats.get(charge.key), now, charge)
            if tat > now:
                tats[charge.key] = tat
            else:
                tats.pop(charge.key, None)  # full again: an idle bucket keeps no state
        self._writes += len(charges)
        if self._writes >= _SWEEP_EVERY:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        # Forget the buckets that are full again, which no one charged since.
        self._writes = 0
        self._tats = {k: t for k, t in self._tats.items() if t > now}
