"""`RedisCircuitStore`: circuits in Redis, so many processes share one breaker.

Each operation is one Lua script, a transcription of `circuit.plan_admit`,
`circuit.plan_record` and `circuit.observed_state`, timed by the Redis server's clock
(`TIME`). A circuit is a hash (`state`, `failures`, `until`, `probes`); a closed circuit
without failures is deleted, any other expires after a day without calls (plus the
recovery timeout), when it is closed again.
"""

from __future__ import annotations

import math
from typing import get_args

from onionskin.core.errors import StoreError
from onionskin.stores._redis import RedisScripts
from onionskin.stores.circuit import CircuitAdmission, CircuitPolicy, Outcome, State

IDLE_TTL = 86_400
"""Seconds a circuit's key outlives its last write (plus the recovery timeout)."""

# Lua's `until` is a keyword: the field's value is called `deadline` in the scripts.
_LOAD = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', key, 'state', 'failures', 'until', 'probes')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0')
local deadline = tonumber(h[3] or '0')
local probes = tonumber(h[4] or '0')
"""

_SAVE = """
local function save(ttl)
  if state == 'closed' and failures == 0 then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'state', state, 'failures', string.format('%d', failures),
    'until', string.format('%.6f', deadline), 'probes', string.format('%d', probes))
  redis.call('EXPIRE', key, ttl)
end
"""

# ARGV: half_open_max_calls, recovery_timeout, ttl. Returns {allowed, retry_after, probe}.
_ADMIT = (
    _LOAD
    + _SAVE
    + """
local max_probes, recovery, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
if state == 'open' then
  if now < deadline then return {0, string.format('%.6f', deadline - now), 0} end
  state, probes = 'half_open', 0
end
if state == 'half_open' then
  if probes >= max_probes then
    if now < deadline then return {0, string.format('%.6f', deadline - now), 0} end
    probes = 0
  end
  probes, deadline = probes + 1, now + recovery
  save(ttl)
  return {1, '0', 1}
end
return {1, '0', 0}
"""
)

# ARGV: failure_threshold, recovery_timeout, ttl, outcome, probe (1 or 0).
_RECORD = (
    _LOAD
    + _SAVE
    + """
local threshold, recovery, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local outcome = ARGV[4]
local probing = ARGV[5] == '1' and state == 'half_open'
if probing then probes = math.max(probes - 1, 0) end
if state == 'closed' or probing then
  if outcome == 'success' then
    state, failures, deadline, probes = 'closed', 0, 0, 0
  elseif outcome == 'failure' then
    failures = failures + 1
    if probing or failures >= threshold then
      state, deadline, probes = 'open', now + recovery, 0
    end
  end
end
save(ttl)
return 1
"""
)

_STATE = (
    _LOAD
    + """
if state == 'open' and now >= deadline then return 'half_open' end
return state
"""
)

_STATES: dict[str, State] = {state: state for state in get_args(State)}


class RedisCircuitStore:
    """Circuits in Redis, shared by every process that uses the same prefix."""

    def __init__(self, scripts: RedisScripts) -> None:
        self.scripts = scripts
        self._admit = scripts.register(_ADMIT)
        self._record = scripts.register(_RECORD)
        self._state = scripts.register(_STATE)

    @classmethod
    def from_url(cls, url: str | None = None, *, prefix: str = "onionskin") -> RedisCircuitStore:
        """A store on `url` (default: `stores._redis.redis_url()`); connects on first use."""
        return cls(RedisScripts.from_url(url, prefix=prefix))

    def _keys(self, key: str) -> list[str]:
        return [self.scripts.key("circuit", key)]

    @staticmethod
    def _ttl(policy: CircuitPolicy) -> str:
        return str(IDLE_TTL + math.ceil(policy.recovery_timeout))

    async def admit(self, key: str, policy: CircuitPolicy) -> CircuitAdmission:
        """Admit a call to circuit `key`, or say for how long it is refused.

        Raises:
            StoreError: when Redis cannot be reached or fails.
        """
        args = [str(policy.half_open_max_calls), repr(policy.recovery_timeout), self._ttl(policy)]
        reply = await self.scripts.run(self._admit, self._keys(key), args)
        return CircuitAdmission(
            allowed=int(reply[0]) == 1, retry_after=float(reply[1]), probe=int(reply[2]) == 1
        )

    async def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool
    ) -> None:
        """Record how an admitted call ended (`probe` as `admit` answered).

        Raises:
            StoreError: when Redis cannot be reached or fails.
        """
        args = [
            str(policy.failure_threshold),
            repr(policy.recovery_timeout),
            self._ttl(policy),
            outcome,
            "1" if probe else "0",
        ]
        await self.scripts.run(self._record, self._keys(key), args)

    async def state(self, key: str) -> State:
        """The state of circuit `key` right now.

        Raises:
            StoreError: when Redis cannot be reached, fails, or holds no circuit there.
        """
        reply = await self.scripts.run(self._state, self._keys(key), [])
        name = reply.decode() if isinstance(reply, bytes) else str(reply)
        state = _STATES.get(name)
        if state is None:
            raise StoreError(f"redis: key {self._keys(key)[0]!r} holds no circuit ({name!r})")
        return state

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self.scripts.aclose()
