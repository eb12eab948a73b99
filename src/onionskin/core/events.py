"""Typed events a run emits: its start and end, every call's start and end, streamed text.

`Orchestrator.run()` yields them (seed 000's `async for event in orchestrator.run(...)`).
They are built only when someone listens, so a run nobody watches pays nothing for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

from onionskin.core.calls import CallKind


def _now() -> float:
    return time.time()


_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
"""Types whose values go into `to_dict` as they are: immutable and already JSON-ready."""
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    """The fields of event class `cls`, in order (looked up once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(item.name for item in fields(cls))
    return names


@dataclass(slots=True)
class _Box:
    """One value, so that `asdict` converts it exactly as it would convert a field."""

    value: Any
    """Any value of an event (an output: Any by design)."""


def _converted(value: object) -> Any:
    """`value` as `to_dict` gives it (Any: JSON-ready).

    A Decimal becomes its string; any other value is converted as `asdict` converts a
    field: nested dataclasses become dicts, containers are copied.
    """
    if isinstance(value, Decimal):
        return str(value)
    copied = asdict(_Box(value))["value"]
    return str(copied) if isinstance(copied, Decimal) else copied


@dataclass(slots=True, kw_only=True)
class Event:
    """What every event carries: its run, its tenant and when it happened (Unix seconds)."""

    type: ClassVar[str] = "event"
    run_id: str
    tenant_id: str | None = None
    timestamp: float = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values, with its `type` (JSON values: Any).

        The dict `dataclasses.asdict` would give, with Decimals as strings, built field by
        field: `asdict` copies every value deeply, ten times the cost for the strings and
        numbers that nearly every field holds (a stream converts every event of every run).
        """
        data: dict[str, Any] = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            data[name] = value if type(value) in _PLAIN else _converted(value)
        data["type"] = self.type
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
    error: str | None = None
    """A tool call that could not run (unknown tool, invalid arguments) answers the model
    with an error instead of raising: that error. None for every other call."""


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
