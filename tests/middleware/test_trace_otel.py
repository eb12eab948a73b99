"""OpenTelemetry spans after the GenAI semantic conventions, on a provider passed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, Span, SpanKind, StatusCode

from onionskin import (
    Agent,
    Message,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    StopProcessing,
    TenantContext,
    ToolCall,
    ToolResult,
    Usage,
)
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.testing import FakeClock, ScriptedModel, tool_call

Exported = tuple[TracerProvider, InMemorySpanExporter]
Next = Callable[[ToolCall], Awaitable[ToolResult]]


@pytest.fixture
def exported() -> Iterator[Exported]:
    """A provider of our own (never the global one) exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def spans_only(provider: TracerProvider) -> TraceMiddleware:
    return TraceMiddleware(TraceConfig(), clock=FakeClock(), tracer_provider=provider)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_model_and_tool_calls_get_genai_spans(exported: Exported) -> None:
    provider, exporter = exported
    calls: list[str] = []

    async def lookup(city: str) -> str:
        """Look a city up."""
        calls.append(city)
        return "sunny"

    requested = tool_call("lookup", city="Paris")
    model = ScriptedModel([requested, "It is sunny."], name="gpt-4o-mini")
    agent = Agent(
        "helper", model=model, tools=[lookup], settings={"temperature": 0.3, "max_tokens": 64}
    )
    orchestrator = Orchestrator(agent, middleware=[spans_only(provider)])

    result = await orchestrator.execute("weather?", context=TenantContext(tenant_id="acme"))

    chat, tool, chat_again = exporter.get_finished_spans()
    assert (chat.name, chat.kind) == ("chat gpt-4o-mini", SpanKind.CLIENT)
    assert (tool.name, tool.kind) == ("execute_tool lookup", SpanKind.INTERNAL)
    assert chat_again.name == "chat gpt-4o-mini"
    final = attributes(chat_again)
    assert final["gen_ai.operation.name"] == "chat"
    assert final["gen_ai.request.model"] == "gpt-4o-mini"
    assert final["gen_ai.response.model"] == "gpt-4o-mini"
    assert final["gen_ai.request.temperature"] == 0.3
    assert final["gen_ai.request.max_tokens"] == 64
    assert final["onionskin.run_id"] == result.run_id
    assert final["onionskin.tenant_id"] == "acme"
    assert final["gen_ai.agent.name"] == "helper"
    usage = result.usage
    tokens = [
        (attributes(s)["gen_ai.usage.input_tokens"], attributes(s)["gen_ai.usage.output_tokens"])
        for s in (chat, chat_again)
    ]
    assert sum(i for i, _ in tokens) == usage.input_tokens
    assert sum(o for _, o in tokens) == usage.output_tokens
    assert attributes(tool) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": requested.call_id,
        "onionskin.run_id": result.run_id,
        "onionskin.tenant_id": "acme",
        "gen_ai.agent.name": "helper",
    }
    assert all(s.status.status_code is StatusCode.UNSET for s in (chat, tool, chat_again))
    assert calls == ["Paris"]


async def test_the_response_model_and_cost_come_from_the_response(exported: Exported) -> None:
    provider, exporter = exported
    answer = ModelResponse(
        message=Message.assistant("hi"),
        usage=Usage(input_tokens=1_000, output_tokens=500, cached_tokens=200),
        model_name="gpt-4o-mini-2024-07-18",
    )
    model = ScriptedModel(
        [answer], name="gpt-4o-mini", input_price_per_mtok="0.15", output_price_per_mtok="0.6"
    )

    async def next(request: ModelRequest) -> ModelResponse:
        return await request.model.request(request)

    request = ModelRequest(model=model, messages=[Message.user("hi")])
    await spans_only(provider).wrap_model_call(request, next)

    (span,) = exporter.get_finished_spans()
    assert attributes(span) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1_000,
        "gen_ai.usage.output_tokens": 500,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "onionskin.cost_usd": "0.00045",
    }


async def test_a_failed_tool_call_sets_error_type_and_reraises(exported: Exported) -> None:
    provider, exporter = exported
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    with pytest.raises(ConnectionError) as raised:
        await spans_only(provider).wrap_tool_call(ToolCall(tool_name="fetch"), failing)

    assert raised.value is error
    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool fetch"
    assert attributes(span)["error.type"] == "ConnectionError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "upstream down"
    assert "gen_ai.tool.call.id" not in attributes(span)  # the caller gave none
    assert not span.events  # the exception is not recorded: its text may hold secrets


async def test_a_failed_model_call_sets_error_type(exported: Exported) -> None:
    provider, exporter = exported

    def script(request: ModelRequest) -> str:
        raise ModelHTTPError("overloaded", status_code=529)

    orchestrator = Orchestrator(
        Agent("helper", model=ScriptedModel(script, name="claude")),
        middleware=[spans_only(provider)],
    )
    with pytest.raises(ModelHTTPError):
        await orchestrator.execute("hi")

    (span,) = exporter.get_finished_spans()
    assert span.name == "chat claude"
    assert attributes(span)["error.type"] == "ModelHTTPError"
    assert "gen_ai.usage.input_tokens" not in attributes(span)
    assert span.status.status_code is StatusCode.ERROR


async def test_an_error_result_of_a_tool_marks_its_span_failed(exported: Exported) -> None:
    provider, exporter = exported
    model = ScriptedModel([tool_call("missing"), "sorry"])
    orchestrator = Orchestrator(Agent("helper", model=model), middleware=[spans_only(provider)])

    await orchestrator.execute("hi")

    tool = exporter.get_finished_spans()[1]
    assert tool.name == "execute_tool missing"
    assert attributes(tool)["error.type"] == "tool_error"
    assert tool.status.status_code is StatusCode.ERROR


async def test_spans_opened_inside_a_call_nest_under_its_span(exported: Exported) -> None:
    provider, exporter = exported
    inner = provider.get_tracer("test")

    async def next(call: ToolCall) -> ToolResult:
        with inner.start_as_current_span("http GET"):
            return ToolResult(tool_name=call.tool_name, value=1)

    await spans_only(provider).wrap_tool_call(ToolCall(tool_name="fetch", call_id="c1"), next)

    child, parent = exporter.get_finished_spans()
    assert child.name == "http GET"
    assert child.parent is not None
    assert parent.context is not None
    assert child.parent.span_id == parent.context.span_id


async def test_otel_off_opens_no_spans(exported: Exported, tmp_path: Path) -> None:
    provider, exporter = exported
    config = TraceConfig(path=tmp_path / "t.jsonl", otel=False)
    trace_mw = TraceMiddleware(config, clock=FakeClock(), tracer_provider=provider)

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=1)

    await trace_mw.wrap_tool_call(ToolCall(tool_name="fetch"), next)

    assert exporter.get_finished_spans() == ()
    assert (tmp_path / "t.jsonl").read_text().count("\n") == 1


async def test_without_a_provider_the_global_one_is_used(exported: Exported) -> None:
    """Tests never set the global provider, so spans go nowhere, and the call still works."""
    trace_mw = TraceMiddleware(TraceConfig(), clock=FakeClock())

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="ok")

    result = await trace_mw.wrap_tool_call(ToolCall(tool_name="fetch"), next)

    assert result.value == "ok"
    assert exported[1].get_finished_spans() == ()


async def test_stop_processing_does_not_mark_the_span_failed(exported: Exported) -> None:
    provider, exporter = exported

    async def stopping(call: ToolCall) -> ToolResult:
        raise StopProcessing("enough")

    with pytest.raises(StopProcessing):
        await spans_only(provider).wrap_tool_call(ToolCall(tool_name="f"), stopping)

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in attributes(span)


def current_span_seen() -> tuple[list[Span], Next]:
    seen: list[Span] = []

    async def next(call: ToolCall) -> ToolResult:
        seen.append(trace.get_current_span())
        return ToolResult(tool_name=call.tool_name, value=1)

    return seen, next


@pytest.mark.parametrize("otel", [True, False])
async def test_without_an_sdk_a_call_leaves_the_current_span_alone(
    otel: bool, tmp_path: Path
) -> None:
    """No global provider in the tests: the API's no-op tracer, and nothing made current."""
    seen, next = current_span_seen()
    config = TraceConfig(otel=otel, path=tmp_path / "t.jsonl")
    trace_mw = TraceMiddleware(config, clock=FakeClock())

    await trace_mw.wrap_tool_call(ToolCall(tool_name="f"), next)

    assert seen == [trace.INVALID_SPAN]


async def test_a_noop_provider_passed_in_opens_nothing(tmp_path: Path) -> None:
    seen, next = current_span_seen()
    config = TraceConfig(path=tmp_path / "t.jsonl")
    trace_mw = TraceMiddleware(config, clock=FakeClock(), tracer_provider=NoOpTracerProvider())

    result = await trace_mw.wrap_tool_call(ToolCall(tool_name="f"), next)

    assert result.value == 1
    assert seen == [trace.INVALID_SPAN]


@pytest.mark.parametrize("otel", [False, True])
async def test_without_spans_a_recording_parent_stays_the_parent(
    exported: Exported, tmp_path: Path, otel: bool
) -> None:
    """As the no-op tracer does: a non-recording copy of the parent is current in the call."""
    provider, exporter = exported
    outer_tracer = provider.get_tracer("app")
    seen: list[tuple[Span, bool]] = []

    async def next(call: ToolCall) -> ToolResult:
        current = trace.get_current_span()
        seen.append((current, current.is_recording()))
        with outer_tracer.start_as_current_span("inner"):
            return ToolResult(tool_name=call.tool_name, value=1)

    config = TraceConfig(path=tmp_path / "t.jsonl", otel=otel)  # otel: a no-op provider
    trace_mw = TraceMiddleware(config, clock=FakeClock(), tracer_provider=NoOpTracerProvider())
    with outer_tracer.start_as_current_span("outer") as outer:
        await trace_mw.wrap_tool_call(ToolCall(tool_name="f"), next)

    ((current, recording),) = seen
    assert not recording
    assert current.get_span_context() == outer.get_span_context()
    inner, _ = exporter.get_finished_spans()
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id


async def test_a_global_provider_set_after_construction_is_used(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = exported
    trace_mw = TraceMiddleware(TraceConfig(), clock=FakeClock())
    await trace_mw.wrap_tool_call(ToolCall(tool_name="before"), current_span_seen()[1])
    # What set_tracer_provider does, undone after the test (it can be set once per process).
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)

    await trace_mw.wrap_tool_call(ToolCall(tool_name="after"), current_span_seen()[1])

    assert [span.name for span in exporter.get_finished_spans()] == ["execute_tool after"]


class _ProxyWithoutItsTracer(trace.ProxyTracer):
    """A proxy tracer as another opentelemetry-api might have it: no `_tracer` to read."""

    @property
    def _tracer(self) -> trace.Tracer | None:  # type: ignore[override]  # the API's own
        return None


async def test_an_api_whose_proxy_hides_its_tracer_is_asked_for_the_provider(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, _ = exported
    trace_mw = TraceMiddleware(TraceConfig(), clock=FakeClock())
    spans = trace_mw._spans
    monkeypatch.setattr(spans, "_tracer", _ProxyWithoutItsTracer("onionskin"))
    unset = spans._current_tracer()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # as set_tracer_provider does

    assert isinstance(unset, trace.NoOpTracer)  # no provider yet: no span to start
    assert spans._current_tracer() is spans._tracer  # one now: the proxy starts the span
