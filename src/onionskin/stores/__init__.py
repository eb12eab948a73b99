"""Where guards keep state that outlives a call: in memory (default) or in Redis.

The Redis stores live in their own modules (`onionskin.stores.redis_rate_limit`,
`.redis_circuit`, `.redis_budget`) so that importing onionskin never imports redis.
"""

from onionskin.stores.budget import BudgetLine, BudgetStore, MemoryBudgetStore, Refusal
from onionskin.stores.checkpoints import (
    Checkpoint,
    CheckpointKind,
    CheckpointStore,
    MemoryCheckpointStore,
    RunStatus,
    RunSummary,
)
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
    "Checkpoint",
    "CheckpointKind",
    "CheckpointStore",
    "CircuitAdmission",
    "CircuitPolicy",
    "CircuitStore",
    "MemoryBudgetStore",
    "MemoryCheckpointStore",
    "MemoryCircuitStore",
    "MemoryRateLimitStore",
    "RateLimitStore",
    "Refusal",
    "RunStatus",
    "RunSummary",
]
