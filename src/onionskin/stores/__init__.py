"""Where guards keep state that outlives a call: in memory (default) or in Redis.

The Redis stores live in their own modules (`onionskin.stores.redis_rate_limit`,
`.redis_circuit`, `.redis_budget`) so that importing onionskin never imports redis.
"""

from onionskin.stores.budget import BudgetLine, BudgetStore, MemoryBudgetStore, Refusal
from onionskin.stores.circuit import (
    CircuitAdmission,
    CircuitPolicy,
    CircuitStore,
    MemoryCircuitStore,
)
from onionskin.stores.rate_limit import Admission, Charge, MemoryRateLimitStore, RateLimitStore

__all__ = [
    "Admission",
    "BudgetLine",
    "BudgetStore",
    "Charge",
    "CircuitAdmission",
    "CircuitPolicy",
    "CircuitStore",
    "MemoryBudgetStore",
    "MemoryCircuitStore",
    "MemoryRateLimitStore",
    "RateLimitStore",
    "Refusal",
]
