"""`RedisRateLimitStore`: GCRA buckets in Redis, so many processes share one limit.

Each operation is one Lua script, a transcription of `rate_limit.plan_acquire` and
`rate_limit.adjusted_tat`: atomic across all its buckets (tenant + user + model limits in one
step), one round trip, and timed by the Redis server's clock (`TIME`), so workers whose
clocks disagree still agree on every bucket. A bucket's key expires when it would be full
again, so idle buckets cost nothing. Multi-key scripts need one node: on Redis Cluster, give
the buckets of one call a hash tag.

Lua turns numbers into integers on the way out, so times travel as strings; `%.6f` keeps
microseconds of a Unix time. `NOW` and `PLAN_ACQUIRE` are also the limiter's half of the
joint admission in `redis_admission.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from onionskin.stores._redis import RedisScripts
from onionskin.stores.rate_limit import ADMITTED, TOLERANCE, Admission, Charge, check_charges

NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function save(key, tat)
  if tat > now then
    local ms = math.ceil((tat - now) * 1000) + 1000
    redis.call('SET', key, string.format('%.6f', tat), 'PX', string.format('%d', ms))
  else
    redis.call('DEL', key)
  end
end
local function start(key)
  local tat = tonumber(redis.call('GET', key) or '')
  if tat == nil or tat < now then return now end
  return tat
end
"""

# `plan_acquire(o)`: for KEYS, with ARGV[o] the tolerance and (rate, burst, cost) per bucket
# after it, the buckets' new TATs, or nil and the refusal {0, retry_after, index of the
# refusing bucket}; it changes nothing. `commit_acquire(new)` saves them.
PLAN_ACQUIRE = """
local function plan_acquire(o)
  local tolerance = tonumber(ARGV[o])
  local new, longest, refused = {}, 0, 0
  for i, key in ipairs(KEYS) do
    local a = o + 3 * i - 2
    local rate, burst, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local wait
    if cost > burst then
      wait = math.huge
    else
      new[i] = start(key) + cost / rate
      wait = new[i] - burst / rate - now
    end
    if wait > tolerance and wait > longest then longest, refused = wait, i end
  end
  if refused > 0 then
    if longest == math.huge then return nil, {0, 'inf', refused} end
    return nil, {0, string.format('%.6f', longest), refused}
  end
  return new, nil
end
local function commit_acquire(new)
  for i, key in ipairs(KEYS) do save(key, new[i]) end
end
"""

# KEYS: buckets; ARGV: tolerance, then (rate, burst, cost) per bucket.
# Returns {1} when admitted, {0, retry_after, index of the refusing bucket} when refused.
_ACQUIRE = (
    NOW
    + PLAN_ACQUIRE
    + """
local new, refused = plan_acquire(1)
if not new then return refused end
commit_acquire(new)
return {1}
"""
)

# KEYS: buckets; ARGV: (rate, cost) per bucket.
_ADJUST = (
    NOW
    + """
for i, key in ipairs(KEYS) do
  local rate, cost = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  save(key, start(key) + cost / rate)
end
return 1
"""
)


def _num(value: float) -> str:
    # repr keeps every digit of a float; Lua's tonumber reads it back exactly.
    return repr(float(value))


def acquire_args(charges: Sequence[Charge]) -> list[str]:
    """`PLAN_ACQUIRE`'s arguments: the tolerance, then (rate, burst, cost) per charge."""
    args = [_num(TOLERANCE)]
    for charge in charges:
        args += [_num(charge.rate), _num(charge.burst), _num(charge.cost)]
    return args


def refused_admission(charges: Sequence[Charge], reply: Sequence[object]) -> Admission:
    """The `Admission` of a refusal reply `{0, retry_after, index}`."""
    refused = charges[int(str(reply[2])) - 1]
    retry_after = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    return Admission(allowed=False, retry_after=float(retry_after), key_that_refused=refused.key)


class RedisRateLimitStore:
    """Rate-limit buckets in Redis, shared by every process that uses the same prefix."""

    def __init__(self, scripts: RedisScripts) -> None:
        self.scripts = scripts
        self._acquire = scripts.register(_ACQUIRE)
        self._adjust = scripts.register(_ADJUST)

    @classmethod
    def from_url(cls, url: str | None = None, *, prefix: str = "onionskin") -> RedisRateLimitStore:
        """A store on `url` (default: `stores._redis.redis_url()`); connects on first use."""
        return cls(RedisScripts.from_url(url, prefix=prefix))

    def key(self, charge: Charge) -> str:
        """The Redis key of `charge`'s bucket."""
        return self.scripts.key("ratelimit", charge.key)

    async def acquire(self, charges: Sequence[Charge]) -> Admission:
        """Take every charge's cost, or none of them if any bucket lacks the tokens.

        Raises:
            StoreError: when Redis cannot be reached or fails.
        """
        check_charges(charges, acquiring=True)
        if not charges:
            return ADMITTED
        keys = [self.key(c) for c in charges]
        reply = await self.scripts.run(self._acquire, keys, acquire_args(charges))
        if int(reply[0]) == 1:
            return ADMITTED
        return refused_admission(charges, reply)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Charge extra (cost > 0) or refund (cost < 0) after the call; never refused.

        Raises:
            StoreError: when Redis cannot be reached or fails.
        """
        check_charges(charges, acquiring=False)
        if not charges:
            return
        args: list[str] = []
        for charge in charges:
            args += [_num(charge.rate), _num(charge.cost)]
        await self.scripts.run(self._adjust, [self.key(c) for c in charges], args)

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self.scripts.aclose()
