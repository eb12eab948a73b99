"""OpenAIModel against a local server speaking the chat completions API."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from email.utils import formatdate
from typing import Any

import openai
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
from onionskin.runtime.models.openai import OpenAIModel
from onionskin.testing import FakeClock
from tests.runtime.models._fake_server import Answer, Drop, Failure, FakeServer, StreamError
from tests.runtime.models.conftest import OPENAI_MODEL, OpenAIFactory

PNG = b"\x89PNG\r\n\x1a\nfake"


def ask(model: OpenAIModel, *messages: Message, **fields: Any) -> ModelRequest:
    return ModelRequest(model=model, messages=list(messages) or [Message.user("hi")], **fields)


async def collect(model: OpenAIModel, request: ModelRequest) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    final: list[ModelResponse] = []
    async for item in model.stream(request):
        if isinstance(item, str):
            deltas.append(item)
        else:
            final.append(item)
    assert len(final) == 1
    return deltas, final[0]


async def answer(model: OpenAIModel, request: ModelRequest, streamed: bool) -> ModelResponse:
    """The model's answer to `request`, through stream() or request()."""
    if streamed:
        return (await collect(model, request))[1]
    return await model.request(request)


def get_weather(city: str) -> str:
    """Tell the weather in a city."""
    return f"sunny in {city}"


# --- answers ---------------------------------------------------------------------------------


async def test_request_answers_with_text_and_the_reported_usage(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(Answer(text="Hello!", input_tokens=120, output_tokens=9, cached_tokens=64))

    response = await model.request(ask(model))

    assert response.message == Message.assistant("Hello!")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (120, 9)
    assert response.usage.cached_tokens == 64
    assert response.model_name == OPENAI_MODEL
    assert openai_server.received[0].headers["authorization"] == "Bearer sk-test"


async def test_request_returns_tool_calls_with_the_provider_ids_and_parsed_arguments(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(
        Answer(tool_calls=[("call_a", "get_weather", '{"city": "Paris"}'), ("call_b", "noop", "")])
    )

    response = await model.request(ask(model))

    assert response.message.tool_calls == [
        ToolCallPart(tool_name="get_weather", args={"city": "Paris"}, call_id="call_a"),
        ToolCallPart(tool_name="noop", args={}, call_id="call_b"),
    ]


# --- the request body ------------------------------------------------------------------------


async def test_request_body_carries_messages_tools_and_settings(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(Answer(text="ok"))
    weather = ToolDefinition(
        name="get_weather",
        description="Tell the weather.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    messages = [
        Message.system("Be brief."),
        Message(
            "user",
            [
                TextPart("What is in these?"),
                DataPart(PNG, "image/png"),
                DataPart(b"%PDF-1.7", "application/pdf"),
                DataPart(b"RIFFwav", "audio/wav"),
            ],
        ),
        Message("assistant", [ToolCallPart("get_weather", {"city": "Oslo"}, "call_1")]),
        Message("tool", [ToolReturnPart("get_weather", "rain", "call_1", is_error=False)]),
    ]
    settings = {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "stop": ["END"], "seed": 7}

    await model.request(ask(model, *messages, tools=[weather], settings=settings))

    body = openai_server.received[0].body
    png = base64.b64encode(PNG).decode()
    assert body["model"] == OPENAI_MODEL
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "document.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi0xLjc=",
                    },
                },
                {"type": "input_audio", "input_audio": {"data": "UklGRndhdg==", "format": "wav"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Tell the weather.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert {key: body[key] for key in settings} == settings
    assert body.get("stream") in (None, False)


async def test_no_tools_sends_no_tools_field(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(Answer(text="ok"))

    await model.request(ask(model))

    assert "tools" not in openai_server.received[0].body


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        (Message("user", [DataPart(b"\x00", "video/mp4")]), r"DataPart \(video/mp4\)"),
        (Message("system", [DataPart(PNG, "image/png")]), "system message"),
        (Message("user", [ToolReturnPart("t", "x", "c")]), "ToolReturnPart"),
        (Message("tool", [TextPart("loose text")]), "tool results only"),
        (Message("assistant", [DataPart(PNG, "image/png")]), "text and tool calls"),
    ],
)
async def test_a_part_the_wire_cannot_carry_is_refused_before_anything_is_sent(
    openai_server: FakeServer, openai_model: OpenAIFactory, message: Message, complaint: str
) -> None:
    model = openai_model()

    with pytest.raises(ModelError, match=complaint):
        await model.request(ask(model, message))

    assert openai_server.received == []


@pytest.mark.parametrize("setting", ["messages", "model", "stream", "tools"])
async def test_a_setting_that_would_overwrite_the_request_is_refused(
    openai_server: FakeServer, openai_model: OpenAIFactory, setting: str
) -> None:
    model = openai_model()

    with pytest.raises(ConfigError, match=setting):
        await model.request(ask(model, settings={setting: True}))

    assert openai_server.received == []


# --- streaming -------------------------------------------------------------------------------


async def test_stream_yields_text_deltas_in_order_then_one_response_with_usage(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(Answer(text="Hello brave new world", input_tokens=30, output_tokens=4))

    deltas, response = await collect(model, ask(model))

    assert deltas == ["Hello ", "brave ", "new ", "world"]
    assert response.message == Message.assistant("Hello brave new world")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 4)
    body = openai_server.received[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_hands_over_text_before_the_server_has_finished(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    """The server holds the rest of its answer until the first delta has arrived."""
    model = openai_model()
    openai_server.answer(Answer(text="first second", pause_after=2))
    stream = model.stream(ask(model))

    first = await asyncio.wait_for(anext(stream), timeout=5)
    openai_server.gate.set()
    rest = [item async for item in stream]

    assert first == "first "
    assert rest[0] == "second"
    assert isinstance(rest[-1], ModelResponse)


async def test_stream_assembles_tool_calls_from_their_deltas(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    args = '{"city": "Paris", "days": [1, 2]}'
    openai_server.answer(Answer(text="Checking.", tool_calls=[("call_9", "get_weather", args)]))

    deltas, response = await collect(model, ask(model))

    assert deltas == ["Checking."]
    assert response.message.parts == [
        TextPart("Checking."),
        ToolCallPart("get_weather", {"city": "Paris", "days": [1, 2]}, "call_9"),
    ]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [('{"city": ', "not valid JSON"), ("[1, 2]", "not a JSON object")],
)
async def test_tool_arguments_that_are_not_a_json_object_raise_model_error(
    openai_server: FakeServer,
    openai_model: OpenAIFactory,
    streamed: bool,
    arguments: str,
    complaint: str,
) -> None:
    model = openai_model()
    openai_server.answer(Answer(tool_calls=[("call_1", "get_weather", arguments)]))

    with pytest.raises(ModelError, match=complaint) as caught:
        await answer(model, ask(model), streamed)

    assert "get_weather" in str(caught.value)


# --- in a run --------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_call_round_trip_in_a_run(
    openai_server: FakeServer, openai_model: OpenAIFactory, streamed: bool
) -> None:
    agent = Agent("assistant", model=openai_model(), tools=[get_weather], instructions="Be brief.")
    openai_server.answer(
        Answer(tool_calls=[("call_7", "get_weather", '{"city": "Paris"}')], input_tokens=40),
        Answer(text="It is sunny in Paris.", input_tokens=60, output_tokens=6),
    )
    events: list[RunEvent] = []

    result = await Orchestrator(agent).execute(
        "Weather in Paris?", on_event=events.append if streamed else None
    )

    assert result.output == "It is sunny in Paris."
    assert result.usage.input_tokens == 100
    second = openai_server.received[1].body["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "call_7"
    assert second[-1] == {"role": "tool", "tool_call_id": "call_7", "content": "sunny in Paris"}
    assert openai_server.received[0].body["tools"][0]["function"]["name"] == "get_weather"
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
        (400, None, None, False),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_http_errors_become_model_http_errors_with_retry_after(
    openai_server: FakeServer,
    openai_model: OpenAIFactory,
    status: int,
    retry_after: str | None,
    seconds: float | None,
    transient: bool,
    streamed: bool,
) -> None:
    model = openai_model(clock=FakeClock(HTTP_DATE_NOW))
    openai_server.answer(Failure(status=status, retry_after=retry_after))

    with pytest.raises(ModelHTTPError) as caught:
        await answer(model, ask(model), streamed)

    assert caught.value.status_code == status
    assert caught.value.retry_after == seconds
    assert is_transient(caught.value) is transient
    assert len(openai_server.received) == 1  # the SDK did not retry on its own


async def test_retry_middleware_waits_what_the_server_asks_then_succeeds(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retries=3), clock=clock)
    agent = Agent("assistant", model=openai_model())
    openai_server.answer(
        Failure(status=429, retry_after="7"),
        Failure(status=500, retry_after="3"),
        Answer(text="finally"),
    )

    result = await Orchestrator(agent, middleware=[retry]).execute("hi")

    assert result.output == "finally"
    assert clock.sleeps == [7.0, 3.0]
    assert len(openai_server.received) == 3


async def test_a_given_client_has_its_own_retries_turned_off(openai_server: FakeServer) -> None:
    client = openai.AsyncOpenAI(base_url=f"{openai_server.url}/v1", api_key="k", max_retries=5)
    model = OpenAIModel(OPENAI_MODEL, client=client)
    openai_server.answer(Failure(status=500, retry_after="0"), Answer(text="too late"))
    try:
        with pytest.raises(ModelHTTPError):
            await model.request(ask(model))
    finally:
        await model.aclose()
        await client.close()

    assert len(openai_server.received) == 1


async def test_an_unreachable_server_is_a_transient_connection_error(
    openai_model: OpenAIFactory,
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = openai_model(base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ModelConnectionError, match=f"127.0.0.1:{port}") as caught:
        await model.request(ask(model))

    assert is_transient(caught.value)


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_dropped_connection_is_a_transient_connection_error(
    openai_server: FakeServer, openai_model: OpenAIFactory, streamed: bool
) -> None:
    model = openai_model()
    openai_server.answer(Drop())

    with pytest.raises(ModelConnectionError) as caught:
        await answer(model, ask(model), streamed)

    assert is_transient(caught.value)


async def test_an_error_inside_the_stream_is_a_model_error(
    openai_server: FakeServer, openai_model: OpenAIFactory
) -> None:
    model = openai_model()
    openai_server.answer(StreamError(kind="server_error"))

    with pytest.raises(ModelError, match="scripted server_error"):
        await collect(model, ask(model))


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": ""}, "model name"),
        ({"base_url": "localhost:8000"}, "OpenAIModel.base_url"),
        ({"api_key": ""}, "OpenAIModel.api_key"),
        ({"timeout": 0}, "OpenAIModel.timeout"),
        ({"timeout": float("nan")}, "OpenAIModel.timeout"),
        ({"client": "not a client"}, "OpenAIModel.client"),
        ({"input_price_per_mtok": "1"}, "input_price_per_mtok and output_price_per_mtok"),
    ],
)
def test_bad_options_raise_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    name = options.pop("name", OPENAI_MODEL)
    options.setdefault("api_key", "k")

    with pytest.raises(ConfigError, match=field):
        OpenAIModel(name, **options)


async def test_a_client_excludes_base_url_and_api_key() -> None:
    client = openai.AsyncOpenAI(api_key="k")
    try:
        with pytest.raises(ConfigError, match="configure the client"):
            OpenAIModel(OPENAI_MODEL, client=client, base_url="http://127.0.0.1:1/v1")
    finally:
        await client.close()


def test_no_key_and_no_base_url_raise_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIModel(OPENAI_MODEL)


async def test_a_base_url_server_needs_no_key(
    openai_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIModel("llama3.1:8b", base_url=f"{openai_server.url}/v1")
    openai_server.answer(Answer(text="local"))
    try:
        response = await model.request(ask(model))
    finally:
        await model.aclose()

    assert response.message.text == "local"
    assert json.dumps(openai_server.received[0].body["model"]) == '"llama3.1:8b"'
    assert repr(model) == f"OpenAIModel('llama3.1:8b', base_url='{openai_server.url}/v1')"
