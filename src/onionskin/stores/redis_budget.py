"""`RedisBudgetStore`: one budget shared by many processes, each operation one Lua script.

Same contract as [MemoryBudgetStore][onionskin.stores.budget.MemoryBudgetStore]. Hold
expiries use the Redis server's clock (`TIME`), so workers with skewed clocks agree.
Layout under `<prefix>:budget`: per line a hash `line:<key>` (`spent`, `held` and one
`h:<reservation id>` field per hold), a sorted set `line:<key>:exp` of hold expiries, the
append-only hash `line:<key>:ledger` (reservation id -> micro-dollars) and the set
`line:<key>:alerts`; per reservation a string `res:<id>` holding its lines as JSON.
Settling reads a reservation's lines from Redis, so the scripts touch keys they were not
passed: use a standalone Redis (or one shard), not a cluster.

`PRELUDE` and `RESERVE_STEPS` are also the budget's half of the joint admission in
`redis_admission.py`. Over 200 lines: a third of it is the Lua, kept next to the Python that
calls it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Raises ImportError naming the extra when redis is missing.
from onionskin.stores._redis import RedisScripts
from onionskin.stores.budget import (
    RECORD_GRACE,
    BudgetLine,
    Refusal,
    check_amount,
    check_reservation,
)

PRELUDE = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function unhold(base, rid)
  local amount = redis.call('HGET', base, 'h:' .. rid)
  if amount then
    redis.call('HDEL', base, 'h:' .. rid)
    redis.call('HINCRBY', base, 'held', -tonumber(amount))
    redis.call('ZREM', base .. ':exp', rid)
  end
end
local function purge(base, now)
  local gone = redis.call('ZRANGEBYSCORE', base .. ':exp', '-inf', now)
  for _, rid in ipairs(gone) do unhold(base, rid) end
end
local function keep(base, ms)
  if ms >= 0 then
    for _, k in ipairs({base, base .. ':exp', base .. ':ledger', base .. ':alerts'}) do
      redis.call('PEXPIRE', k, ms)
    end
  end
end
local function line_key(key) return P .. ':line:' .. key end
"""

# With ARGV[2..5] the reservation's id, amount, ttl ms and grace ms:
# `check_lines(first, now)`, for the lines (key, limit or -1, keep ms or -1) from ARGV[first]
# on, purges expired holds and answers the lines to hold, or nil and the refusal
# {key, limit, spent, held}; `hold_lines(lines, now)` holds the amount on them and records
# the reservation. `reserved()`: the reservation is already held (then admit it again).
RESERVE_STEPS = """
local function reserved()
  return redis.call('EXISTS', P .. ':res:' .. ARGV[2]) == 1
end
local function check_lines(first, now)
  local amount, lines = tonumber(ARGV[3]), {}
  for i = first, #ARGV, 3 do
    local base, limit = line_key(ARGV[i]), tonumber(ARGV[i + 1])
    purge(base, now)
    if limit >= 0 then
      local v = redis.call('HMGET', base, 'spent', 'held')
      local spent, held = tonumber(v[1] or 0), tonumber(v[2] or 0)
      if spent + held + amount > limit then return nil, {ARGV[i], limit, spent, held} end
    end
    lines[#lines + 1] = {ARGV[i], tonumber(ARGV[i + 2])}
  end
  return lines, nil
end
local function hold_lines(lines, now)
  local rid, ttl, grace = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
  for _, line in ipairs(lines) do
    local base = line_key(line[1])
    redis.call('HSET', base, 'h:' .. rid, ARGV[3])
    redis.call('HINCRBY', base, 'held', ARGV[3])
    redis.call('ZADD', base .. ':exp', now + ttl, rid)
    keep(base, line[2])
  end
  redis.call('SET', P .. ':res:' .. rid, cjson.encode(lines), 'PX', ttl + grace)
end
"""

# ARGV: prefix, id, amount, ttl ms, grace ms, then (key, limit or -1, keep ms or -1) per line.
_RESERVE = """
if reserved() then return {} end
local now = now_ms()
local lines, refused = check_lines(6, now)
if not lines then return refused end
hold_lines(lines, now)
return {}
"""

# ARGV: prefix, id, actual (or -1 to release). Returns key, spent per line; {} if unknown.
_END = """
local rid, actual = ARGV[2], ARGV[3]
local record = P .. ':res:' .. rid
local encoded = redis.call('GET', record)
if not encoded then return {} end
redis.call('DEL', record)
local out = {}
for _, line in ipairs(cjson.decode(encoded)) do
  local base = line_key(line[1])
  unhold(base, rid)
  if actual ~= '-1' and redis.call('HSETNX', base .. ':ledger', rid, actual) == 1 then
    redis.call('HINCRBY', base, 'spent', actual)
  end
  keep(base, line[2])
  out[#out + 1] = line[1]
  out[#out + 1] = tonumber(redis.call('HGET', base, 'spent') or 0)
end
return out
"""

# ARGV: prefix, key. Returns spent, held.
_READ = """
local base = line_key(ARGV[2])
purge(base, now_ms())
local v = redis.call('HMGET', base, 'spent', 'held')
return {tonumber(v[1] or 0), tonumber(v[2] or 0)}
"""

_LEDGER = "return redis.call('HGETALL', line_key(ARGV[2]) .. ':ledger')"

# ARGV: prefix, key, threshold. The claim lives as long as its line.
_CLAIM = """
local base = line_key(ARGV[2])
local added = redis.call('SADD', base .. ':alerts', ARGV[3])
local ttl = redis.call('PTTL', base)
if ttl > 0 then redis.call('PEXPIRE', base .. ':alerts', ttl) end
return added
"""


def _ms(seconds: float | None) -> int:
    return -1 if seconds is None else max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def hold_args(reservation_id: str, amount_micros: int, ttl: float) -> list[str | int]:
    """`RESERVE_STEPS`' ARGV[2..5]: the reservation's id, amount, ttl and grace (ms)."""
    return [reservation_id, amount_micros, _ms(ttl), _ms(RECORD_GRACE)]


def line_args(lines: Sequence[BudgetLine]) -> list[str | int]:
    """`check_lines`' arguments: (key, limit or -1, keep ms or -1) per line."""
    args: list[str | int] = []
    for line in lines:
        limit = -1 if line.limit_micros is None else line.limit_micros
        args += [line.key, limit, _ms(line.keep_for)]
    return args


def refusal_of(reply: Sequence[Any]) -> Refusal:
    """The `Refusal` of a refusal reply `{key, limit, spent, held}`.

    Any: the script's reply, bytes and integers as Redis sends them.
    """
    key, limit, spent, held = reply
    return Refusal(
        key=_text(key), limit_micros=int(limit), spent_micros=int(spent), held_micros=int(held)
    )


class RedisBudgetStore:
    """Budgets shared by every process that uses the same Redis and key prefix."""

    def __init__(self, scripts: RedisScripts) -> None:
        self.scripts = scripts
        self._prefix = scripts.key("budget")
        self._reserve = scripts.register(PRELUDE + RESERVE_STEPS + _RESERVE)
        self._end = scripts.register(PRELUDE + _END)
        self._read = scripts.register(PRELUDE + _READ)
        self._ledger = scripts.register(PRELUDE + _LEDGER)
        self._claim = scripts.register(PRELUDE + _CLAIM)

    @classmethod
    def from_url(cls, url: str | None = None, *, prefix: str = "onionskin") -> RedisBudgetStore:
        """A store on the Redis at `url` (default: `ONIONSKIN_REDIS_URL`), connected lazily.

        Pool options: build `RedisScripts.from_url(...)` yourself and pass it to the store.
        """
        return cls(RedisScripts.from_url(url, prefix=prefix))

    async def _run(self, script: Any, *args: Any) -> Any:
        # Any: each script answers the shape it was written to return.
        return await self.scripts.run(script, [], [self._prefix, *args])

    async def reserve(
        self, reservation_id: str, lines: Sequence[BudgetLine], amount_micros: int, ttl: float
    ) -> Refusal | None:
        """Hold `amount_micros` on every line, or on none; None when admitted."""
        check_reservation(lines, amount_micros, ttl)
        args = hold_args(reservation_id, amount_micros, ttl) + line_args(lines)
        refused = await self._run(self._reserve, *args)
        return refusal_of(refused) if refused else None

    async def settle(self, reservation_id: str, actual_micros: int) -> Mapping[str, int] | None:
        """Charge `actual_micros` to the reservation's lines; their new spend by key."""
        check_amount(actual_micros)
        ended = await self._run(self._end, reservation_id, actual_micros)
        if not ended:
            return None
        return {_text(ended[i]): int(ended[i + 1]) for i in range(0, len(ended), 2)}

    async def release(self, reservation_id: str) -> bool:
        """Drop the reservation without charging it; False if it had already ended."""
        return bool(await self._run(self._end, reservation_id, -1))

    async def spent(self, key: str) -> int:
        """Micro-dollars settled on line `key`."""
        spent, _ = await self._run(self._read, key)
        return int(spent)

    async def held(self, key: str) -> int:
        """Micro-dollars reserved on line `key` by unexpired, unsettled reservations."""
        _, held = await self._run(self._read, key)
        return int(held)

    async def ledger(self, key: str) -> dict[str, int]:
        """Line `key`'s ledger: the settled amount of each reservation id."""
        flat = await self._run(self._ledger, key)
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def claim_alert(self, key: str, threshold: str) -> bool:
        """True exactly once per line `key` and `threshold`, across every worker."""
        return bool(await self._run(self._claim, key, threshold))

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self.scripts.aclose()
