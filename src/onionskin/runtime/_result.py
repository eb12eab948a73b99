"""`RunResult`: how a run ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from onionskin.core.context import AgentStats
from onionskin.core.usage import Usage


@dataclass(slots=True, kw_only=True)
class RunResult:
    """How a run ended: its answer, what it consumed, and its final state."""

    run_id: str
    pipeline_id: str
    tenant_id: str | None
    status: Literal["completed"] = "completed"
    output: Any
    """The last agent's output, or the `StopProcessing` response: Any by design."""
    stopped: bool
    """True when a `StopProcessing` ended the run early."""
    usage: Usage
    cost_usd: Decimal
    duration_ms: float
    state: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, AgentStats] = field(default_factory=dict)
    """Tokens, cost, time and calls per agent, in run order."""
