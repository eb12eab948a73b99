from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest

from onionskin import (
    Agent,
    ConfigError,
    DataPart,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    RunEvent,
    TextDelta,
    TextPart,
    ToolCallPart,
    Usage,
)
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory


def ask(model: ScriptedModel, text: str = "hi there") -> ModelRequest:
    return ModelRequest(model=model, messages=[Message.user(text)])


async def collect(model: ScriptedModel, request: ModelRequest) -> list[str | ModelResponse]:
    return [item async for item in model.stream(request)]


# --- list scripts ----------------------------------------------------------------------------


async def test_list_script_is_answered_in_order() -> None:
    model = ScriptedModel(["first", "second", "third"])

    answers = [(await model.request(ask(model))).message.text for _ in range(3)]

    assert answers == ["first", "second", "third"]


@pytest.mark.parametrize("size", [0, 1, 2])
async def test_exhausted_script_raises_saying_how_many_answers_it_held(size: int) -> None:
    model = ScriptedModel([f"answer {index}" for index in range(size)], name="oracle")
    for _ in range(size):
        await model.request(ask(model))

    with pytest.raises(ModelError) as info:
        await model.request(ask(model))

    assert f"its script held {size};" in str(info.value)
    assert "'oracle'" in str(info.value)


async def test_list_script_is_shared_by_successive_runs(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(["one", "two"])

    first = await orchestrator.execute("a")
    second = await orchestrator.execute("b")

    assert (first.output, second.output) == ("one", "two")
    with pytest.raises(ModelError, match="held 2"):
        await orchestrator.execute("c")


async def test_script_items_become_assistant_messages() -> None:
    single = tool_call("lookup", order_id="A1")
    several = [tool_call("a"), tool_call("b", x=1)]
    message = Message("assistant", [TextPart("see"), DataPart(b"\x00", "image/png")])
    model = ScriptedModel(["text", single, several, message])

    text, one, many, given = [(await model.request(ask(model))).message for _ in range(4)]

    assert text == Message("assistant", [TextPart("text")])
    assert one == Message("assistant", [single])
    assert many == Message("assistant", list(several))
    assert given is message


async def test_model_response_item_is_returned_as_is() -> None:
    response = ModelResponse(
        message=Message.assistant("ready"),
        usage=Usage(input_tokens=123, output_tokens=45, cached_tokens=6),
        model_name="other",
    )
    model = ScriptedModel([response])

    assert await model.request(ask(model)) is response


async def test_usage_is_a_deterministic_estimate() -> None:
    model = ScriptedModel(["hello world", tool_call("lookup", topic="x")], name="est")
    request = ModelRequest(
        model=model, messages=[Message.system("Be kind."), Message.user("hi there")]
    )

    text = await model.request(request)
    call = await model.request(request)

    # input: (8 + 8) chars // 4 + 4 per message; output: 11 chars // 4.
    assert text.usage == Usage(input_tokens=12, output_tokens=2)
    assert text.model_name == "est"
    # a tool call counts its name and 8 characters per argument: (6 + 8) // 4.
    assert call.usage == Usage(input_tokens=12, output_tokens=3)


def test_tool_call_helper_builds_a_tool_call_part() -> None:
    call = tool_call("lookup", order_id="A1", verbose=True)

    assert isinstance(call, ToolCallPart)
    assert call.tool_name == "lookup"
    assert dict(call.args) == {"order_id": "A1", "verbose": True}
    assert call.call_id.startswith("call_")
    assert len(call.call_id) > len("call_")


def test_tool_call_helper_gives_each_call_its_own_id() -> None:
    ids = {tool_call("lookup").call_id for _ in range(5)}

    assert len(ids) == 5


# --- function scripts ------------------------------------------------------------------------


async def test_sync_function_script_answers_from_the_request() -> None:
    seen: list[ModelRequest] = []

    def echo(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return f"echo: {request.messages[-1].text}"

    model = ScriptedModel(echo)
    first = ask(model, "ping")
    second = ask(model, "pong")

    assert (await model.request(first)).message.text == "echo: ping"
    assert (await model.request(second)).message.text == "echo: pong"
    assert seen == [first, second]
    assert seen[0] is first


async def test_async_function_script_is_awaited() -> None:
    async def answer(request: ModelRequest) -> ScriptItem:
        if request.messages[-1].text == "tool please":
            return tool_call("lookup", topic="x")
        return "async " + request.messages[-1].text

    # Script's type does not admit async functions, though they are supported.
    script: Any = answer
    model = ScriptedModel(script)

    text = await model.request(ask(model, "hello"))
    call = await model.request(ask(model, "tool please"))

    assert text.message.text == "async hello"
    assert call.message.tool_calls[0].tool_name == "lookup"


async def test_async_function_script_drives_a_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    async def answer(request: ModelRequest) -> ScriptItem:
        return f"{len(request.messages)} message(s)"

    script: Any = answer
    result = await orchestrator_factory(script, instructions="Count.").execute("go")

    assert result.output == "2 message(s)"


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_async_callable_object_script_is_awaited() -> None:
    class Oracle:
        async def __call__(self, request: ModelRequest) -> ScriptItem:
            return "from an object"

    script: Any = Oracle()
    model = ScriptedModel(script)

    try:
        text = (await model.request(ask(model))).message.text
    except ModelError as error:
        text = f"ModelError: {error}"
    # Free the never-awaited coroutine now, while this test's warning filter applies.
    gc.collect()

    assert text == "from an object"


@pytest.mark.parametrize(
    "item",
    [42, None, 3.5, {"text": "hi"}, b"bytes", [tool_call("a"), "text"], object()],
    ids=["int", "none", "float", "dict", "bytes", "mixed-list", "object"],
)
async def test_bad_script_item_raises_model_error(item: Any) -> None:
    model = ScriptedModel([item], name="broken")

    with pytest.raises(ModelError, match=r"scripted model 'broken': cannot answer with") as info:
        await model.request(ask(model))

    assert type(item).__name__ in str(info.value)


async def test_bad_item_from_a_function_script_raises_model_error() -> None:
    def script(request: ModelRequest) -> Any:
        return 7

    model = ScriptedModel(script)

    with pytest.raises(ModelError, match="cannot answer with int"):
        await model.request(ask(model))


@pytest.mark.parametrize("script", ["just text", 42, None, {"a": "b"}])
def test_script_must_be_a_list_or_a_function(script: Any) -> None:
    with pytest.raises(ConfigError, match="list of answers or a function"):
        ScriptedModel(script)


# --- streaming -------------------------------------------------------------------------------


async def test_stream_yields_words_then_one_response() -> None:
    model = ScriptedModel(["hello brave new world"])

    items = await collect(model, ask(model))

    assert items[:-1] == ["hello", " brave", " new", " world"]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.text == "hello brave new world"
    assert final.usage.output_tokens == 5


@pytest.mark.parametrize(
    "text",
    [
        "one",
        " leading space",
        "trailing space ",
        "double  space",
        "  ",
        "line\nbreak and more",
        "",
    ],
)
async def test_stream_deltas_join_to_the_final_text(text: str) -> None:
    model = ScriptedModel([Message("assistant", [TextPart(text), tool_call("t")])])

    items = await collect(model, ask(model))

    deltas = [item for item in items if isinstance(item, str)]
    responses = [item for item in items if isinstance(item, ModelResponse)]
    assert len(responses) == 1
    assert items[-1] is responses[0]
    assert "".join(deltas) == responses[0].message.text == text
    assert all(deltas)


async def test_stream_of_several_text_parts_joins_them_with_newlines() -> None:
    model = ScriptedModel([Message("assistant", [TextPart("one two"), TextPart("three")])])

    items = await collect(model, ask(model))

    assert "".join(item for item in items if isinstance(item, str)) == "one two\nthree"


async def test_stream_of_a_tool_call_yields_only_the_response() -> None:
    call = tool_call("lookup", topic="x")
    model = ScriptedModel([call])

    items = await collect(model, ask(model))

    assert len(items) == 1
    final = items[0]
    assert isinstance(final, ModelResponse)
    assert final.message.tool_calls == [call]


async def test_stream_advances_the_script_like_request() -> None:
    model = ScriptedModel(["first", "second"])

    streamed = await collect(model, ask(model))
    requested = await model.request(ask(model))

    assert streamed == [
        "first",
        ModelResponse(
            message=Message.assistant("first"),
            usage=Usage(input_tokens=6, output_tokens=1),
            model_name="scripted",
        ),
    ]
    assert requested.message.text == "second"


async def test_listening_run_streams_text_deltas_that_join_to_the_output(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    events: list[RunEvent] = []
    orchestrator = orchestrator_factory(
        [tool_call("nothing"), "the quick  brown fox"], name="narrator"
    )

    result = await orchestrator.execute("tell", on_event=events.append)

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert "".join(delta.text for delta in deltas) == result.output == "the quick  brown fox"
    assert {delta.agent for delta in deltas} == {"narrator"}
    assert {delta.run_id for delta in deltas} == {result.run_id}


# --- prices ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["input_price_per_mtok", "output_price_per_mtok"])
@pytest.mark.parametrize(
    "price", [-1, "-0.01", Decimal("-5"), "abc", "", "NaN", "Infinity", "-Infinity"]
)
def test_negative_or_non_numeric_prices_are_refused(field: str, price: Any) -> None:
    with pytest.raises(ConfigError, match=f"ScriptedModel.{field} must be"):
        ScriptedModel(["x"], **{field: price})


@pytest.mark.parametrize("price", [None, [1, 2], object()], ids=["none", "list", "object"])
def test_price_of_a_non_numeric_type_is_refused_with_config_error(price: Any) -> None:
    with pytest.raises(ConfigError, match="input_price_per_mtok"):
        ScriptedModel(["x"], input_price_per_mtok=price)


@pytest.mark.parametrize(
    ("price", "expected"),
    [(0, Decimal(0)), (3, Decimal(3)), ("0.15", Decimal("0.15")), (Decimal("2.5"), Decimal("2.5"))],
)
def test_prices_are_kept_as_decimals(price: Any, expected: Decimal) -> None:
    model = ScriptedModel(["x"], input_price_per_mtok=price, output_price_per_mtok=price)

    assert model.input_price_per_mtok == expected
    assert model.output_price_per_mtok == expected
    assert isinstance(model.input_price_per_mtok, Decimal)


def test_cost_is_exact_at_per_million_prices() -> None:
    model = ScriptedModel(["x"], input_price_per_mtok="0.15", output_price_per_mtok="0.60")

    assert model.cost(Usage(input_tokens=1_000_000, output_tokens=500_000)) == Decimal("0.45")
    assert model.cost(Usage(input_tokens=3, output_tokens=7)) == Decimal("0.00000465")
    assert model.cost(Usage()) == Decimal(0)


def test_cost_with_only_an_output_price() -> None:
    model = ScriptedModel(["x"], output_price_per_mtok=2)

    assert model.cost(Usage(input_tokens=999, output_tokens=250_000)) == Decimal("0.5")


def test_free_model_costs_zero() -> None:
    cost = ScriptedModel(["x"]).cost(Usage(input_tokens=10**9, output_tokens=10**9))

    assert cost == 0
    assert isinstance(cost, Decimal)


async def test_priced_model_cost_reaches_the_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    model = ScriptedModel(["hello world"], input_price_per_mtok=4, output_price_per_mtok=8)
    result = await Orchestrator(Agent("solo", model=model)).execute("hi there")

    # input 6 tokens ("hi there" + framing), output 2 tokens ("hello world").
    assert result.usage == Usage(input_tokens=6, output_tokens=2)
    assert result.cost_usd == Decimal("0.00004")
