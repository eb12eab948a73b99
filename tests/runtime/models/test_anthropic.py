"""AnthropicModel against a local server speaking the messages API (SSE)."""

from __future__ import annotations

import asyncio
import base64
from email.utils import formatdate
from typing import Any

import anthropic
import pytest

from onionskin import (
    Agent,
    ConfigError,
    DataPart,
    Message,
    ModelError,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    RetryConfig,
    RetryMiddleware,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolDefinition,
    ToolReturnPart,
)
from onionskin.core.events import RunEvent
from onionskin.middleware._transient import is_transient
from onionskin.runtime.models._provider_errors import ModelConnectionError
from onionskin.runtime.models.anthropic import AnthropicModel
from onionskin.testing import FakeClock
from tests.runtime.models._fake_server import Answer, Drop, Failure, FakeServer, StreamError
from tests.runtime.models.conftest import ANTHROPIC_MODEL, AnthropicFactory

PNG = b"\x89PNG\r\n\x1a\nfake"


def ask(model: AnthropicModel, *messages: Message, **fields: Any) -> ModelRequest:
    return ModelRequest(model=model, messages=list(messages) or [Message.user("hi")], **fields)


async def collect(model: AnthropicModel, request: ModelRequest) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    final: list[ModelResponse] = []
    async for item in model.stream(request):
        if isinstance(item, str):
            deltas.append(item)
        else:
            final.append(item)
    assert len(final) == 1
    return deltas, final[0]


def get_weather(city: str) -> str:
    """Tell the weather in a city."""
    return f"sunny in {city}"


# --- answers ---------------------------------------------------------------------------------


async def test_request_answers_with_text_and_usage_counting_cache_reads_as_input(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    model = anthropic_model()
    anthropic_server.answer(
        Answer(text="Hello there!", input_tokens=120, output_tokens=9, cached_tokens=64)
    )

    response = await model.request(ask(model))

    assert response.message == Message.assistant("Hello there!")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (120, 9)
    assert response.usage.cached_tokens == 64
    assert response.model_name == ANTHROPIC_MODEL


async def test_request_returns_tool_calls_with_the_provider_ids_and_parsed_arguments(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    model = anthropic_model()
    anthropic_server.answer(
        Answer(
            text="Let me check.",
            tool_calls=[("toolu_1", "get_weather", '{"city": "Paris"}'), ("toolu_2", "noop", "")],
        )
    )

    response = await model.request(ask(model))

    assert response.message.parts == [
        TextPart("Let me check."),
        ToolCallPart(tool_name="get_weather", args={"city": "Paris"}, call_id="toolu_1"),
        ToolCallPart(tool_name="noop", args={}, call_id="toolu_2"),
    ]


# --- the request body ------------------------------------------------------------------------


async def test_request_body_carries_system_messages_tools_and_settings(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    model = anthropic_model()
    anthropic_server.answer(Answer(text="ok"))
    weather = ToolDefinition(
        name="get_weather",
        description="Tell the weather.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    messages = [
        Message.system("Be brief."),
        Message.system("Answer in English."),
        Message(
            "user",
            [
                TextPart("What is in these?"),
                DataPart(PNG, "image/png"),
                DataPart(b"%PDF-1.7", "application/pdf"),
                DataPart(b"plain notes", "text/plain"),
            ],
        ),
        Message("assistant", [TextPart(""), ToolCallPart("get_weather", {"city": "Oslo"}, "t1")]),
        Message("tool", [ToolReturnPart("get_weather", "no such city", "t1", is_error=True)]),
        Message.user("And tomorrow?"),
    ]
    settings = {"temperature": 0.2, "max_tokens": 50, "top_k": 5, "stop": "END"}

    await model.request(ask(model, *messages, tools=[weather], settings=settings))

    body = anthropic_server.received[0].body
    png = base64.b64encode(PNG).decode()
    assert body["system"] == "Be brief.\n\nAnswer in English."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": png},
                },
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0xLjc=",
                    },
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}
            ],
        },
        {
            # The tool results and the next user text share one user turn: turns alternate.
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": "no such city",
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Tell the weather.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert (body["max_tokens"], body["temperature"], body["top_k"]) == (50, 0.2, 5)
    assert body["stop_sequences"] == ["END"]
    assert "stop" not in body
    assert body["stream"] is True


async def test_max_tokens_defaults_to_the_model_option_and_honours_aliases(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    model = anthropic_model(max_tokens=321)
    anthropic_server.answer(Answer(text="a"), Answer(text="b"))

    await model.request(ask(model))
    await model.request(ask(model, settings={"max_output_tokens": 77}))

    first, second = (received.body for received in anthropic_server.received)
    assert (first["max_tokens"], second["max_tokens"]) == (321, 77)
    assert "max_output_tokens" not in second
    assert "tools" not in first
    assert "system" not in first


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "9"}, "max_tokens"),
        ({"stop": 5}, "'stop'"),
        ({"stop": ["a", 1]}, "'stop'"),
        ({"system": "sneaky"}, "system"),
        ({"messages": []}, "messages"),
    ],
)
async def test_bad_settings_raise_config_error_before_anything_is_sent(
    anthropic_server: FakeServer,
    anthropic_model: AnthropicFactory,
    settings: dict[str, Any],
    complaint: str,
) -> None:
    model = anthropic_model()

    with pytest.raises(ConfigError, match=complaint):
        await model.request(ask(model, settings=settings))

    assert anthropic_server.received == []


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        (Message("user", [DataPart(b"RIFF", "audio/wav")]), r"DataPart \(audio/wav\)"),
        (Message("user", [DataPart(b"\xff\xfe", "text/plain")]), "UTF-8"),
        (Message("system", [DataPart(PNG, "image/png")]), "system message"),
        (Message("user", [ToolCallPart("t", {}, "c")]), "ToolCallPart"),
        (Message("tool", [TextPart("loose")]), "tool results only"),
        (Message("assistant", [ToolReturnPart("t", "x", "c")]), "text and tool calls"),
    ],
)
async def test_a_part_the_wire_cannot_carry_is_refused_before_anything_is_sent(
    anthropic_server: FakeServer,
    anthropic_model: AnthropicFactory,
    message: Message,
    complaint: str,
) -> None:
    model = anthropic_model()

    with pytest.raises(ModelError, match=complaint):
        await model.request(ask(model, message))

    assert anthropic_server.received == []


# --- streaming -------------------------------------------------------------------------------


async def test_stream_yields_text_deltas_in_order_then_one_response_with_usage(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    model = anthropic_model()
    anthropic_server.answer(Answer(text="Hello brave new world", input_tokens=30, output_tokens=4))

    deltas, response = await collect(model, ask(model))

    assert deltas == ["Hello ", "brave ", "new ", "world"]
    assert response.message == Message.assistant("Hello brave new world")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 4)


async def test_stream_hands_over_text_before_the_server_has_finished(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    """The server holds the rest of its answer until the first delta has arrived."""
    model = anthropic_model()
    anthropic_server.answer(Answer(text="first second", pause_after=4))
    stream = model.stream(ask(model))

    first = await asyncio.wait_for(anext(stream), timeout=5)
    anthropic_server.gate.set()
    rest = [item async for item in stream]

    assert first == "first "
    assert rest[0] == "second"
    assert isinstance(rest[-1], ModelResponse)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [('{"city": ', "not valid JSON"), ('"Paris"', "not a JSON object")],
)
async def test_tool_input_that_is_not_a_json_object_raises_model_error(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory, arguments: str, complaint: str
) -> None:
    model = anthropic_model()
    anthropic_server.answer(Answer(tool_calls=[("toolu_1", "get_weather", arguments)]))

    with pytest.raises(ModelError, match=complaint):
        await collect(model, ask(model))


# --- in a run --------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_call_round_trip_in_a_run(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory, streamed: bool
) -> None:
    agent = Agent("assistant", model=anthropic_model(), tools=[get_weather], instructions="Brief.")
    anthropic_server.answer(
        Answer(tool_calls=[("toolu_7", "get_weather", '{"city": "Paris"}')], input_tokens=40),
        Answer(text="It is sunny in Paris.", input_tokens=60, output_tokens=6),
    )
    events: list[RunEvent] = []

    result = await Orchestrator(agent).execute(
        "Weather in Paris?", on_event=events.append if streamed else None
    )

    assert result.output == "It is sunny in Paris."
    assert result.usage.input_tokens == 100
    second = anthropic_server.received[1].body
    assert second["system"] == "Brief."
    assert second["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_7",
                "content": "sunny in Paris",
                "is_error": False,
            }
        ],
    }
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert deltas == (["It ", "is ", "sunny ", "in ", "Paris."] if streamed else [])


# --- errors and retries ----------------------------------------------------------------------

HTTP_DATE_NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds", "transient"),
    [
        (429, "7", 7.0, True),
        (500, "3", 3.0, True),
        (503, formatdate(HTTP_DATE_NOW + 30, usegmt=True), 30.0, True),
        (401, None, None, False),
    ],
)
async def test_http_errors_become_model_http_errors_with_retry_after(
    anthropic_server: FakeServer,
    anthropic_model: AnthropicFactory,
    status: int,
    retry_after: str | None,
    seconds: float | None,
    transient: bool,
) -> None:
    model = anthropic_model(clock=FakeClock(HTTP_DATE_NOW))
    anthropic_server.answer(Failure(status=status, retry_after=retry_after))

    with pytest.raises(ModelHTTPError) as caught:
        await model.request(ask(model))

    assert caught.value.status_code == status
    assert caught.value.retry_after == seconds
    assert is_transient(caught.value) is transient
    assert len(anthropic_server.received) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize(
    ("kind", "status"), [("overloaded_error", 529), ("rate_limit_error", 429), ("api_error", 500)]
)
async def test_an_error_event_inside_the_stream_maps_to_the_status_it_means(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory, kind: str, status: int
) -> None:
    model = anthropic_model()
    anthropic_server.answer(StreamError(kind=kind))

    with pytest.raises(ModelHTTPError) as caught:
        await collect(model, ask(model))

    assert caught.value.status_code == status


async def test_retry_middleware_waits_what_the_server_asks_then_succeeds(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory
) -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retries=3), clock=clock)
    agent = Agent("assistant", model=anthropic_model())
    anthropic_server.answer(
        Failure(status=429, retry_after="7"),
        Failure(status=500, retry_after="3"),
        Answer(text="finally"),
    )

    result = await Orchestrator(agent, middleware=[retry]).execute("hi")

    assert result.output == "finally"
    assert clock.sleeps == [7.0, 3.0]
    assert len(anthropic_server.received) == 3


@pytest.mark.parametrize("script", [Drop(), Answer(text="cut short", complete=False)])
async def test_a_lost_connection_or_a_cut_stream_is_a_transient_connection_error(
    anthropic_server: FakeServer, anthropic_model: AnthropicFactory, script: Drop | Answer
) -> None:
    model = anthropic_model()
    anthropic_server.answer(script)

    with pytest.raises(ModelConnectionError) as caught:
        await model.request(ask(model))

    assert is_transient(caught.value)


async def test_a_given_client_has_its_own_retries_turned_off(anthropic_server: FakeServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=anthropic_server.url, api_key="k", max_retries=5)
    model = AnthropicModel(ANTHROPIC_MODEL, client=client)
    anthropic_server.answer(Failure(status=500, retry_after="0"), Answer(text="too late"))
    try:
        with pytest.raises(ModelHTTPError):
            await model.request(ask(model))
    finally:
        await model.aclose()
        await client.close()

    assert len(anthropic_server.received) == 1


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": " "}, "model name"),
        ({"base_url": "ftp://example.test"}, "AnthropicModel.base_url"),
        ({"max_tokens": 0}, "AnthropicModel.max_tokens"),
        ({"max_tokens": True}, "AnthropicModel.max_tokens"),
        ({"timeout": -1}, "AnthropicModel.timeout"),
        ({"client": object()}, "AnthropicModel.client"),
        ({"output_price_per_mtok": 1.5}, "input_price_per_mtok and output_price_per_mtok"),
    ],
)
def test_bad_options_raise_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    name = options.pop("name", ANTHROPIC_MODEL)
    options.setdefault("api_key", "k")

    with pytest.raises(ConfigError, match=field):
        AnthropicModel(name, **options)


async def test_a_client_excludes_base_url_and_api_key() -> None:
    client = anthropic.AsyncAnthropic(api_key="k")
    try:
        with pytest.raises(ConfigError, match="configure the client"):
            AnthropicModel(ANTHROPIC_MODEL, client=client, api_key="other")
    finally:
        await client.close()


async def test_a_base_url_server_needs_no_key(
    anthropic_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = AnthropicModel(ANTHROPIC_MODEL, base_url=anthropic_server.url)
    anthropic_server.answer(Answer(text="proxied"))
    try:
        response = await model.request(ask(model))
    finally:
        await model.aclose()

    assert response.message.text == "proxied"
    assert "no-key" in str(anthropic_server.received[0].headers)
    assert repr(model) == f"AnthropicModel('{ANTHROPIC_MODEL}', base_url='{anthropic_server.url}')"
