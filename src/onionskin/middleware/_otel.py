"""OpenTelemetry spans for model and tool calls, after the GenAI semantic conventions.

Only `opentelemetry-api` is used: the application picks the SDK and exporter. A model call
is a CLIENT span `chat {model}`, a tool call an INTERNAL span `execute_tool {tool}`; both
are current while the call runs, so spans the model client or the tool open nest under
them. Failures set `error.type` and an ERROR status; the exception itself is not recorded
as an event, because its message and stack may hold what the redaction keeps out of files.

With the API's no-op tracer (no SDK installed, `otel=False`, or a `NoOpTracerProvider`) a
call opens no span at all, and builds no attributes: `start_as_current_span` would cost
more than the rest of a traced call (three generator context managers) to make current a
span that is current already.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)
from opentelemetry.util.types import AttributeValue

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import current_context_or_none

OPERATION = "gen_ai.operation.name"
ERROR_TYPE = "error.type"
TOOL_ERROR = "tool_error"
"""`error.type` of a tool call that answered with an error result instead of raising."""
# Request settings the conventions name, and the attribute each one becomes.
_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}

SpanScope = AbstractContextManager[Span]
# What a call gets when no span is recorded: the current span stays current, and marking
# this one failed or finished does nothing, as on any non-recording span.
_NO_SPAN: SpanScope = nullcontext(INVALID_SPAN)


def _run_attributes() -> dict[str, AttributeValue]:
    ctx = current_context_or_none()
    if ctx is None:
        return {}
    attributes: dict[str, AttributeValue] = {"onionskin.run_id": ctx.run_id}
    if ctx.tenant_id is not None:
        attributes["onionskin.tenant_id"] = ctx.tenant_id
    if ctx.current_agent:
        attributes["gen_ai.agent.name"] = ctx.current_agent
    return attributes


def _settings(settings: Mapping[str, Any]) -> dict[str, AttributeValue]:
    # Any: provider settings are JSON values; only numbers become attributes.
    attributes: dict[str, AttributeValue] = {}
    for key, name in _SETTINGS.items():
        value = settings.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    return attributes


class GenAISpans:
    """Opens the spans of model and tool calls on a tracer (a no-op one when disabled)."""

    def __init__(self, tracer_provider: TracerProvider | None, *, enabled: bool) -> None:
        # None: the global provider, looked up through its proxy at each span, so one set
        # after this middleware was built is still used.
        self._tracer: trace.Tracer = (
            trace.get_tracer("onionskin", tracer_provider=tracer_provider)
            if enabled
            else trace.NoOpTracer()
        )
        self._always_noop = isinstance(self._tracer, trace.NoOpTracer)
        self._via_global = isinstance(self._tracer, trace.ProxyTracer)

    def _recording(self) -> bool:
        """Whether a span started now may be recorded, so that it must really be started."""
        if not self._always_noop and not isinstance(self._current_tracer(), trace.NoOpTracer):
            return True
        # Under a recording span the no-op tracer makes a non-recording copy of it current
        # for the call, so that spans the call opens elsewhere still find their parent.
        return trace.get_current_span().is_recording()

    def _current_tracer(self) -> object:
        """The tracer a span started now would be started on."""
        if not self._via_global:
            return self._tracer
        # The proxy starts it on the global provider's tracer once one is set, on a no-op
        # one until then; read as the proxy reads it (its `_tracer`), since
        # `get_tracer_provider()` looks the environment up on every call (a third of what
        # tracing a tool call cost).
        found = getattr(self._tracer, "_tracer", None)
        if found is not None:
            return found
        provider = trace.get_tracer_provider()  # an API whose proxy has no `_tracer`
        if isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
            return trace.NoOpTracer()
        return self._tracer

    def chat(self, request: ModelRequest) -> SpanScope:
        """The span of a model call, current inside the `with` block."""
        if not self._recording():
            return _NO_SPAN
        model = request.model.name
        attributes: dict[str, AttributeValue] = {
            OPERATION: "chat",
            "gen_ai.request.model": model,
            **_settings(request.settings),
            **_run_attributes(),
        }
        return self._start(f"chat {model}", SpanKind.CLIENT, attributes)

    def execute_tool(self, call: ToolCall) -> SpanScope:
        """The span of a tool call, current inside the `with` block."""
        if not self._recording():
            return _NO_SPAN
        attributes: dict[str, AttributeValue] = {
            OPERATION: "execute_tool",
            "gen_ai.tool.name": call.tool_name,
            "gen_ai.tool.type": "function",
            **_run_attributes(),
        }
        if call.call_id:
            attributes["gen_ai.tool.call.id"] = call.call_id
        return self._start(f"execute_tool {call.tool_name}", SpanKind.INTERNAL, attributes)

    def _start(self, name: str, kind: SpanKind, attributes: dict[str, AttributeValue]) -> SpanScope:
        return self._tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )


def chat_finished(
    span: Span, request: ModelRequest, response: ModelResponse, cost: Decimal | None
) -> None:
    """Add what the model answered: its model name and token usage (and cost, exact)."""
    if not span.is_recording():  # nothing would keep the attributes: do not build them
        return
    usage = response.usage
    attributes: dict[str, AttributeValue] = {
        "gen_ai.response.model": response.model_name or request.model.name,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    if cost is not None:
        attributes["onionskin.cost_usd"] = str(cost)
    span.set_attributes(attributes)


def tool_finished(span: Span, result: ToolResult) -> None:
    """Mark the span failed when the tool answered with an error result."""
    if result.error is not None:
        failed(span, TOOL_ERROR, result.error)


def failed(span: Span, error_type: str, message: str) -> None:
    """Mark the span failed: `error.type` and an ERROR status with `message`."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message))
