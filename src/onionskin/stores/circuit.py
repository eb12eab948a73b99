"""Circuit-breaker state: the `CircuitStore` protocol, its values, and the in-memory store.

A circuit is CLOSED (counting consecutive failures), OPEN (refusing until `until`), or
HALF_OPEN (letting `half_open_max_calls` probes through). The store runs the transitions,
so one circuit kept in Redis is shared by every process:

- `admit`: closed admits; open refuses until `until`, then turns half open; half open
  admits a probe while probe slots are free. A probe slot held longer than
  `recovery_timeout` counts as lost (its process died) and is given to a new probe.
- `record`: a success closes the circuit (from closed, or a probe's from half open);
  a counted failure opens it at the threshold, or at once when a probe fails; an
  uncounted end (cancelled, ignored error) only frees the probe slot. Results of calls
  admitted before the circuit opened do not move an open or half-open circuit: the probes
  decide.

A closed circuit without failures is no state at all, so healthy targets cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeAlias

from onionskin.core.clock import SYSTEM_CLOCK, Clock

State: TypeAlias = Literal["closed", "open", "half_open"]
Outcome: TypeAlias = Literal["success", "failure", "ignored"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitPolicy:
    """What the store needs of the breaker's config to run the transitions."""

    failure_threshold: int
    """Consecutive failures that open the circuit."""
    recovery_timeout: float
    """Seconds an open circuit refuses calls; also how long a probe may hold its slot."""
    half_open_max_calls: int
    """Probes admitted at once while half open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitAdmission:
    """The answer to `admit`."""

    allowed: bool
    retry_after: float = 0.0
    """Seconds until a call may be admitted again, when refused."""
    probe: bool = False
    """The call was admitted as a half-open probe: pass it back to `record`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Circuit:
    """One circuit's stored state."""

    state: State = "closed"
    failures: int = 0
    until: float = 0.0
    """Open: when probing may start. Half open: when the held probe slots count as lost."""
    probes: int = 0
    """Probes in flight while half open."""


CLOSED = Circuit()
_ADMITTED = CircuitAdmission(allowed=True)  # immutable: one answer serves every closed admit


class CircuitStore(Protocol):
    """Where circuits live; every operation is atomic."""

    async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        """Admit a call to circuit `key`, or say for how long it is refused."""
        ...

    async def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        """Record how an admitted call ended (`probe` as `admit` answered)."""
        ...

    async def state(self, key: str) -> State:
        """The state of circuit `key` right now."""
        ...


def plan_admit(c: Circuit, now: float, policy: CircuitPolicy) -> tuple[Circuit, CircuitAdmission]:
    """Decide an admission: the circuit's new state and the answer.

    The Lua script in `redis_circuit.py` is a transcription of this function.
    """
    if c.state == "open":
        if now < c.until:
            return c, CircuitAdmission(allowed=False, retry_after=c.until - now)
        c = replace(c, state="half_open", probes=0)
    if c.state == "half_open":
        if c.probes >= policy.half_open_max_calls:
            if now < c.until:
                return c, CircuitAdmission(allowed=False, retry_after=c.until - now)
            c = replace(c, probes=0)  # every slot is held past its expiry: count them lost
        c = replace(c, probes=c.probes + 1, until=now + policy.recovery_timeout)
        return c, CircuitAdmission(allowed=True, probe=True)
    return c, _ADMITTED


def plan_record(
    c: Circuit, now: float, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
) -> Circuit:
    """A circuit's state after a call admitted by `plan_admit` ended with `outcome`."""
    probing = probe and c.state == "half_open"
    if probing:
        c = replace(c, probes=max(c.probes - 1, 0))
    if outcome == "success" and (c.state == "closed" or probing):
        return CLOSED
    if outcome == "failure" and (c.state == "closed" or probing):
        failures = c.failures + 1
        if probing or failures >= policy.failure_threshold:
            return Circuit(state="open", failures=failures, until=now + policy.recovery_timeout)
        return replace(c, failures=failures)
    return c


def observed_state(c: Circuit, now: float) -> State:
    """What callers see: an open circuit past `until` is half open (its next call probes)."""
    if c.state == "open" and now >= c.until:
        return "half_open"
    return c.state


class MemoryCircuitStore:
    """Circuits in this process's memory (the default); reads `clock.monotonic()`."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._circuits: dict[str, Circuit] = {}

    def admit_nowait(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        """`admit` without awaiting: memory has nothing to wait for.

        Guards call this on their hot path to spare every admitted call a coroutine.
        """
        circuit = self._circuits.get(key)
        if circuit is None:
            # Healthy targets have no state, and closed admits whatever the time: this is
            # the common path, so it neither reads the clock nor plans.
            return _ADMITTED
        circuit, admission = plan_admit(circuit, self._clock.monotonic(), policy)
        self._save(key, circuit)
        return admission

    def record_nowait(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        """`record` without awaiting."""
        circuit = self._circuits.get(key)
        if circuit is None:
            if outcome != "failure":
                return  # closed without failures stays so: only a failure changes it
            circuit = CLOSED
        now = self._clock.monotonic()
        self._save(key, plan_record(circuit, now, policy, outcome, probe=probe))

    async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        """Admit a call to circuit `key`, or say for how long it is refused."""
        return self.admit_nowait(key, policy)

    async def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        """Record how an admitted call ended (`probe` as `admit` answered)."""
        self.record_nowait(key, policy, outcome, probe=probe)

    async def state(self, key: str) -> State:
        """The state of circuit `key` right now."""
        return observed_state(self._circuits.get(key, CLOSED), self._clock.monotonic())

    def _save(self, key: str, circuit: Circuit) -> None:
        if circuit is CLOSED or circuit == CLOSED:
            self._circuits.pop(key, None)
        else:
            self._circuits[key] = circuit
