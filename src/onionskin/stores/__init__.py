"""Where guards keep state that outlives a call: in memory (default) or in Redis.

The Redis stores live in their own modules (`onionskin.stores.redis_rate_limit`,
`.redis_circuit`, `.redis_budget`) so that importing onionskin never imports redis.
"""

from onionskin.stores.approvals import (
    ApprovalQueue,
    ApprovalRequest,
    ApprovalStatus,
    MemoryApprovalQueue,
)
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
from onionskin.stores.ledger import (
    CostEntry,
    CostLedger,
    CostTotals,
    MemoryCostLedger,
    RecordOutcome,
)
from onionskin.stores.rate_limit import Admission, Charge, MemoryRateLimitStore, RateLimitStore

__all__ = [
    "Admission",
    "ApprovalQueue",
    "ApprovalRequest",
    "ApprovalStatus",
    "BudgetLine",
    "BudgetStore",
    "Charge",
    "Checkpoint",
    "CheckpointKind",
    "CheckpointStore",
    "CircuitAdmission",
    "CircuitPolicy",
    "CircuitStore",
    "CostEntry",
    "CostLedger",
    "CostTotals",
    "MemoryApprovalQueue",
    "MemoryBudgetStore",
    "MemoryCheckpointStore",
    "MemoryCircuitStore",
    "MemoryCostLedger",
    "MemoryRateLimitStore",
    "RateLimitStore",
    "RecordOutcome",
    "Refusal",
    "RunStatus",
    "RunSummary",
]
