"""`RedisAdmissionStore`: rate-limit charges and a budget reservation in one Lua script.

The issue: "A Redis-backed admission (limiter + budget) costs one round trip." One EVALSHA
checks every GCRA bucket of the call, then every budget line, and commits both only if all
admit: a bucket short of tokens or a line that would be overdrawn changes nothing (no bucket
moved, nothing held). The limiter is asked first, so its refusal is the one reported when
both would refuse, as when the limiter sits outside the budget.

The script is assembled from the two stores' own Lua (`redis_rate_limit.PLAN_ACQUIRE`,
`redis_budget.RESERVE_STEPS`), so buckets, lines, reservation records, expiries and
grace are exactly theirs: the same keys, and a reservation made here is settled or released
by [RedisBudgetStore][onionskin.stores.redis_budget.RedisBudgetStore] like any other. Like
the budget's scripts it touches keys it is not passed (lines, reservation records): use a
standalone Redis (or one shard), not a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

# Raises ImportError naming the extra when redis is missing.
from onionskin.stores._redis import RedisScripts
from onionskin.stores.budget import BudgetLine, Refusal, check_reservation
from onionskin.stores.rate_limit import ADMITTED, Admission, Charge, check_charges
from onionskin.stores.redis_budget import (
    PRELUDE,
    RESERVE_STEPS,
    RedisBudgetStore,
    hold_args,
    line_args,
    refusal_of,
)
from onionskin.stores.redis_rate_limit import (
    NOW,
    PLAN_ACQUIRE,
    RedisRateLimitStore,
    acquire_args,
    refused_admission,
)

# KEYS: buckets. ARGV: budget prefix, reservation id, amount, ttl ms, grace ms (the budget's
# ARGV[1..5]), then the tolerance and (rate, burst, cost) per bucket from ARGV[6] (the
# limiter's), then (key, limit or -1, keep ms or -1) per budget line to the end.
# Returns {1} when both were committed, {0, retry_after, bucket index} when the limiter
# refused, {2, key, limit, spent, held} when a budget line would be overdrawn.
_ADMIT = (
    NOW
    + PLAN_ACQUIRE
    + PRELUDE
    + RESERVE_STEPS
    + """
local new, limited = plan_acquire(6)
if not new then return limited end
if not reserved() then
  local ms = now_ms()
  local lines, refused = check_lines(7 + 3 * #KEYS, ms)
  if not lines then return {2, refused[1], refused[2], refused[3], refused[4]} end
  hold_lines(lines, ms)
end
commit_acquire(new)
return {1}
"""
)


class RedisAdmissionStore:
    """Rate-limit buckets and budgets on one Redis, with a joint admission of both.

    `limits` and `budget` are the two stores on the same client and prefix, for everything
    else the guards do (adjusting tokens, settling, releasing, reading spend, alerts).
    """

    def __init__(self, scripts: RedisScripts) -> None:
        self.scripts = scripts
        self.limits = RedisRateLimitStore(scripts)
        """The rate-limit buckets this store admits from."""
        self.budget = RedisBudgetStore(scripts)
        """The budget lines this store reserves on."""
        self._prefix = scripts.key("budget")
        self._admit = scripts.register(_ADMIT)

    @classmethod
    def from_url(cls, url: str | None = None, *, prefix: str = "onionskin") -> RedisAdmissionStore:
        """A store on `url` (default: `stores._redis.redis_url()`); connects on first use."""
        return cls(RedisScripts.from_url(url, prefix=prefix))

    async def admit(
        self,
        charges: Sequence[Charge],
        reservation_id: str,
        lines: Sequence[BudgetLine],
        amount_micros: int,
        ttl: float,
    ) -> tuple[Admission, Refusal | None]:
        """Take every charge and hold `amount_micros` on every line, or change nothing.

        The charges are as for `RedisRateLimitStore.acquire`, the reservation as for
        `RedisBudgetStore.reserve` (an id already held is admitted again without a second
        hold). One round trip.

        Returns:
            The limiter's answer (refused: nothing was changed and the budget was not
            checked) and, when it admits, the budget's refusal (nothing was changed either),
            or None when both were committed.

        Raises:
            ValueError: for malformed charges or a malformed reservation; nothing changed.
            StoreError: when Redis cannot be reached or fails.
        """
        check_charges(charges, acquiring=True)
        check_reservation(lines, amount_micros, ttl)
        args = [self._prefix, *hold_args(reservation_id, amount_micros, ttl)]
        args += [*acquire_args(charges), *line_args(lines)]
        keys = [self.limits.key(charge) for charge in charges]
        reply = await self.scripts.run(self._admit, keys, args)
        outcome = int(reply[0])
        if outcome == 0:
            return refused_admission(charges, reply), None
        if outcome == 2:
            return ADMITTED, refusal_of(reply[1:])
        return ADMITTED, None

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self.scripts.aclose()
