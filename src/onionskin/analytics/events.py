"""`AnalyticsEvent`: what dashboards, webhooks and OpenTelemetry receive about runs (seed 003).

An analytics event is a small JSON-shaped record: a `type` (`token_usage`, `tool_call`,
`run_completed`, ...), when it happened, whose it is (tenant and run) and its `data`
(seed 003's dashboard reads `e.data.total_tokens` and `e.data.tool`). It is a pydantic
model because it crosses process boundaries: WebSocket clients, Redis and webhooks get
`model_dump_json()`, and what comes back from Redis is validated again.

[from_run_event][onionskin.analytics.events.from_run_event] turns the run events every
run emits (`onionskin.core.events`) into analytics events; the coordinator's middleware
form builds run events too and converts them here, so both ways of listening agree.
Money is a string in plain decimal notation (`"0.000125"`): exact, and a `Decimal` again
with `Decimal(data["cost_usd"])`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from onionskin.analytics._checks import SAFE_ID
from onionskin.core.events import (
    CallFailed,
    CallFinished,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
)
from onionskin.core.ids import new_id

EVENT_TYPES: Final = (
    "run_started",
    "run_completed",
    "run_failed",
    "agent_finished",
    "agent_failed",
    "token_usage",
    "model_error",
    "tool_call",
)
"""The types onionskin emits; applications may record events of their own types too."""
# A stop ends the run as completed, and a cancelled call did not fail: neither is a failure.
_NOT_FAILURES = frozenset({"StopProcessing", "CancelledError"})
MAX_ERROR_CHARS: Final = 500
"""Error messages are cut to this length: events travel in WebSocket and Redis messages."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AnalyticsEvent(BaseModel):
    """One analytics record (seed 003's `AnalyticsEvent`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")
    """What happened: one of `EVENT_TYPES`, or an application's own lower-case name."""
    timestamp: AwareDatetime = Field(default_factory=_utc_now)
    """When it happened (ISO 8601 in JSON, which JavaScript's `new Date()` reads)."""
    tenant_id: str | None = Field(default=None, pattern=f"^{SAFE_ID.pattern}$")
    """The tenant the run belongs to; None for a run without a tenant."""
    run_id: str | None = Field(default=None, min_length=1, max_length=128)
    """The run it belongs to, if any."""
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    """A unique id, so that a receiver can drop a record it got twice."""
    data: dict[str, JsonValue] = Field(default_factory=dict)
    """The type's fields (tokens, tool, cost, duration...)."""


def money(amount: Decimal) -> str:
    """`amount` in plain decimal notation: `str()` would write small amounts as `1E-7`."""
    return format(amount, "f")


def _error(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _event(
    kind: str,
    run_id: str | None,
    tenant_id: str | None,
    timestamp: float,
    data: dict[str, JsonValue],
) -> AnalyticsEvent:
    # model_construct: every value here comes from the runtime and is valid by construction;
    # validating each run's events again would cost more than building them.
    return AnalyticsEvent.model_construct(
        type=kind,
        timestamp=datetime.fromtimestamp(timestamp, UTC),
        tenant_id=tenant_id,
        run_id=run_id,
        id=new_id(),
        data=data,
    )


def tool_call(event: CallFinished | CallFailed) -> AnalyticsEvent:
    """The `tool_call` analytics event of a tool call's end.

    `success` is False when the call raised (`CallFailed`) or answered the model an error
    result (the `CallFinished` event's `error`: an unknown tool, invalid arguments).
    """
    answered = event.error if isinstance(event, CallFinished) else None
    data: dict[str, JsonValue] = {
        "tool": event.name,
        "agent": event.agent,
        "call_id": event.call_id,
        "duration_ms": event.duration_ms,
        "success": isinstance(event, CallFinished) and answered is None,
    }
    if isinstance(event, CallFailed):
        data.update(error_type=event.error_type, error=_error(event.error))
    elif answered is not None:
        data.update(error_type=None, error=_error(answered))
    return _event("tool_call", event.run_id, event.tenant_id, event.timestamp, data)


def _call_finished(event: CallFinished) -> AnalyticsEvent | None:
    if event.kind == "tool":
        return tool_call(event)
    data: dict[str, JsonValue] = {"agent": event.agent, "duration_ms": event.duration_ms}
    if event.kind == "agent":
        data["agent"] = event.name
        return _event("agent_finished", event.run_id, event.tenant_id, event.timestamp, data)
    if event.kind == "model":
        tokens = {"input_tokens": event.input_tokens, "output_tokens": event.output_tokens}
        data.update(model=event.name, call_id=event.call_id, **tokens)
        data.update(total_tokens=sum(tokens.values()), cost_usd=money(event.cost_usd))
        return _event("token_usage", event.run_id, event.tenant_id, event.timestamp, data)
    return None  # the pipeline call: run_completed says it


def _call_failed(event: CallFailed) -> AnalyticsEvent | None:
    if event.error_type in _NOT_FAILURES:
        return None
    if event.kind == "tool":
        return tool_call(event)
    data: dict[str, JsonValue] = {
        "agent": event.agent,
        "error_type": event.error_type,
        "error": _error(event.error),
        "duration_ms": event.duration_ms,
    }
    if event.kind == "agent":
        data["agent"] = event.name
        return _event("agent_failed", event.run_id, event.tenant_id, event.timestamp, data)
    if event.kind == "model":
        data.update(model=event.name, call_id=event.call_id)
        return _event("model_error", event.run_id, event.tenant_id, event.timestamp, data)
    return None  # the pipeline call: run_failed says it


def run_completed(event: RunCompleted) -> AnalyticsEvent:
    """A completed run's totals (`run_completed`); its output stays out of analytics."""
    data: dict[str, JsonValue] = {
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "total_tokens": event.input_tokens + event.output_tokens,
        "cost_usd": money(event.cost_usd),
        "duration_ms": event.duration_ms,
        "stopped": event.stopped,
    }
    return _event("run_completed", event.run_id, event.tenant_id, event.timestamp, data)


def run_failed(event: RunFailed) -> AnalyticsEvent:
    """A failed run (`run_failed`)."""
    data: dict[str, JsonValue] = {
        "error_type": event.error_type,
        "error": _error(event.error),
        "duration_ms": event.duration_ms,
    }
    return _event("run_failed", event.run_id, event.tenant_id, event.timestamp, data)


def from_run_event(event: RunEvent) -> AnalyticsEvent | None:
    """The analytics event for one run event, or None when analytics skip it.

    Skipped: call starts and streamed text (dashboards chart finished work), the pipeline
    call's own end, which `run_completed` / `run_failed` report, and calls that ended with
    `StopProcessing` or cancellation, which are no failures.
    """
    if isinstance(event, CallFinished):
        return _call_finished(event)
    if isinstance(event, CallFailed):
        return _call_failed(event)
    if isinstance(event, RunStarted):
        data: dict[str, JsonValue] = {"pipeline_id": event.pipeline_id}
        return _event("run_started", event.run_id, event.tenant_id, event.timestamp, data)
    if isinstance(event, RunCompleted):
        return run_completed(event)
    if isinstance(event, RunFailed):
        return run_failed(event)
    return None
