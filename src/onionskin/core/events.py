"""Typed events a run emits: its start and end, every call's start and end, streamed text.

`Orchestrator.run()` yields them (seed 000's `async for event in orchestrator.run(...)`).
They are built only when someone listens, so a run nobody watches pays nothing for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

from onionskin.core.calls import CallKind


def _now() -> float:
    return time.time()


@dataclass(slots=True, kw_only=True)
class Event:
    """What every event carries: its run, its tenant and when it happened (Unix seconds)."""

    type: ClassVar[str] = "event"
    run_id: str
    tenant_id: str | None = None
    timestamp: float = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values, with its `type` (JSON values: Any)."""
        data = asdict(self)
        data["type"] = self.type
        for key, value in data.items():
            if isinstance(value, Decimal):
                data[key] = str(value)
        return data


@dataclass(slots=True, kw_only=True)
class RunStarted(Event):
    """A run began."""

    type: ClassVar[str] = "run_started"
    pipeline_id: str


@dataclass(slots=True, kw_only=True)
class RunCompleted(Event):
    """A run ended with an answer (`stopped` when a `StopProcessing` gave it)."""

    type: ClassVar[str] = "run_completed"
    output: Any
    """The run's answer: Any by design."""
    stopped: bool
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    duration_ms: float


@dataclass(slots=True, kw_only=True)
class RunFailed(Event):
    """A run ended with an exception; the caller receives that exception next."""

    type: ClassVar[str] = "run_failed"
    error_type: str
    error: str
    duration_ms: float


@dataclass(slots=True, kw_only=True)
class CallStarted(Event):
    """A call of some kind began (before its outermost middleware)."""

    type: ClassVar[str] = "call_started"
    kind: CallKind
    name: str
    call_id: str
    agent: str | None = None


@dataclass(slots=True, kw_only=True)
class CallFinished(Event):
    """A call returned; model calls carry their tokens and cost."""

    type: ClassVar[str] = "call_finished"
    kind: CallKind
    name: str
    call_id: str
    duration_ms: float
    agent: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(slots=True, kw_only=True)
class CallFailed(Event):
    """A call raised; the exception goes on to the caller's layers."""

    type: ClassVar[str] = "call_failed"
    kind: CallKind
    name: str
    call_id: str
    duration_ms: float
    error_type: str
    error: str
    agent: str | None = None


@dataclass(slots=True, kw_only=True)
class TextDelta(Event):
    """A piece of streamed model text."""

    type: ClassVar[str] = "text_delta"
    agent: str
    text: str


RunEvent: TypeAlias = (
    RunStarted | RunCompleted | RunFailed | CallStarted | CallFinished | CallFailed | TextDelta
)
EventSink: TypeAlias = Callable[[RunEvent], None]
