from __future__ import annotations

from typing import Any

import pytest

from onionskin import (
    Agent,
    ConfigError,
    DataPart,
    EmptyModelResponseError,
    MaxStepsExceededError,
    Message,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    PromptVariableError,
    TextPart,
    Tool,
    ToolCallPart,
    ToolReturnPart,
)
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.testing import tool_call
from tests.conftest import AgentFactory, OrchestratorFactory, recorder


def tool_returns(request: ModelRequest) -> list[ToolReturnPart]:
    """The tool results the model reads in `request` (its last message)."""
    last = request.messages[-1]
    assert last.role == "tool"
    parts = [part for part in last.parts if isinstance(part, ToolReturnPart)]
    assert len(parts) == len(last.parts)
    return parts


def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


# --- instructions ----------------------------------------------------------------------------


async def test_instructions_are_filled_from_state_into_the_system_message(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["sure"], seen), instructions="You help {user} with {topic}. Again: {user}."
    )

    result = await orchestrator.execute("hi", state={"user": "Ada", "topic": "maths"})

    assert result.output == "sure"
    assert len(seen) == 1
    system, user = seen[0].messages
    assert system == Message.system("You help Ada with maths. Again: Ada.")
    assert user == Message.user("hi")


async def test_instructions_can_quote_the_runs_input(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(recorder(["ok"], seen), instructions="Asked: {input}")

    await orchestrator.execute("what time is it?")

    assert seen[0].messages[0].text == "Asked: what time is it?"


async def test_instructions_support_format_specs_and_hyphenated_keys(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["ok"], seen), instructions="[{name:>5}] {fact-checker} {name!r}"
    )

    await orchestrator.execute("go", state={"name": "Ada", "fact-checker": "verified"})

    assert seen[0].messages[0].text == "[  Ada] verified 'Ada'"


async def test_state_values_holding_braces_are_not_reinterpreted(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(recorder(["ok"], seen), instructions="Note: {note}")

    await orchestrator.execute("go", state={"note": "{secret} and {{x}}"})

    assert seen[0].messages[0].text == "Note: {secret} and {{x}}"


async def test_no_instructions_means_no_system_message(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(recorder(["ok"], seen))

    await orchestrator.execute("hello")

    assert seen[0].messages == [Message.user("hello")]


async def test_missing_state_key_raises_prompt_variable_error_before_any_model_call(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["never"], seen), name="tutor", instructions="Teach {user} about {topic}."
    )

    with pytest.raises(PromptVariableError) as info:
        await orchestrator.execute("hi", state={"user": "Ada"})

    assert info.value.key == "topic"
    assert info.value.agent == "tutor"
    assert "{topic}" in str(info.value)
    assert "'tutor'" in str(info.value)
    assert isinstance(info.value, ConfigError)
    assert seen == []


async def test_literal_braces_next_to_placeholders_become_single_braces(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["ok"], seen), instructions='Answer {user} as {{"reply": "..."}}.'
    )

    await orchestrator.execute("go", state={"user": "Ada"})

    assert seen[0].messages[0].text == 'Answer Ada as {"reply": "..."}.'


async def test_literal_braces_without_placeholders_become_single_braces(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["ok"], seen), instructions='Answer as {{"reply": "..."}}.'
    )

    await orchestrator.execute("go")

    assert seen[0].messages[0].text == 'Answer as {"reply": "..."}.'


@pytest.mark.parametrize("instructions", ["Hello {", "Hello }", "{}", "{0}", "{a.b}", "{a[0]}"])
def test_malformed_or_non_key_placeholders_are_config_errors(instructions: str) -> None:
    with pytest.raises(ConfigError, match="'helper'"):
        Agent("helper", model=ScriptedModel(["x"]), instructions=instructions)


def test_instructions_property_keeps_the_template_unfilled(agent_factory: AgentFactory) -> None:
    agent = agent_factory(["x"], instructions="Hi {user}")

    assert agent.instructions == "Hi {user}"
    assert agent.prompt.keys == ("user",)


# --- steps and empty answers -------------------------------------------------------------


async def test_max_steps_exceeded_after_exactly_max_steps_model_calls(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    pings: list[int] = []

    def ping() -> str:
        pings.append(1)
        return "pong"

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return tool_call("ping")

    orchestrator = orchestrator_factory(script, name="looper", tools=[ping], max_steps=3)

    with pytest.raises(MaxStepsExceededError) as info:
        await orchestrator.execute("go")

    assert info.value.agent == "looper"
    assert info.value.max_steps == 3
    assert "'looper'" in str(info.value)
    assert "3 model calls" in str(info.value)
    assert len(seen) == 3
    assert len(pings) == 3


async def test_final_answer_on_the_last_allowed_step_succeeds(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(
        [tool_call("search", query="x"), tool_call("search", query="y"), "found"],
        tools=[search],
        max_steps=3,
    )

    result = await orchestrator.execute("go")

    assert result.output == "found"
    assert result.agents["assistant"].model_calls == 3
    assert result.agents["assistant"].tool_calls == 2


@pytest.mark.parametrize(
    "answer",
    [
        Message("assistant", []),
        Message.assistant(""),
        ModelResponse(message=Message("assistant", [])),
    ],
    ids=["no-parts", "empty-text", "empty-response"],
)
async def test_answer_with_neither_text_nor_tool_calls_raises(
    orchestrator_factory: OrchestratorFactory, answer: ScriptItem
) -> None:
    orchestrator = orchestrator_factory([answer], name="mute")

    with pytest.raises(EmptyModelResponseError) as info:
        await orchestrator.execute("hello?")

    assert info.value.agent == "mute"
    assert info.value.model == "scripted"
    assert "neither text nor tool calls" in str(info.value)


async def test_answer_holding_only_data_is_not_empty(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    image = Message("assistant", [DataPart(b"\x89PNG", "image/png")])
    orchestrator = orchestrator_factory([image])

    result = await orchestrator.execute("draw")

    assert result.output == ""


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", ".hidden", "a b", "", "x" * 65, "a\\b", "-dash", "_under", "a.b", "tab\t"],
)
def test_invalid_agent_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="agent name"):
        Agent(name, model=ScriptedModel(["x"]))


@pytest.mark.parametrize("name", ["a", "9lives", "writer_2", "fact-checker", "x" * 64])
def test_valid_agent_names_are_accepted(name: str) -> None:
    assert Agent(name, model=ScriptedModel(["x"])).name == name


def test_non_string_agent_name_is_refused() -> None:
    name: Any = 42
    with pytest.raises(ConfigError, match="agent name"):
        Agent(name, model=ScriptedModel(["x"]))


def test_duplicate_tool_names_are_refused() -> None:
    def other() -> str:
        return "other"

    with pytest.raises(ConfigError, match="two tools are named 'search'"):
        Agent("a", model=ScriptedModel(["x"]), tools=[search, Tool(other, name="search")])


@pytest.mark.parametrize("max_steps", [0, -1, True, False, 2.0, "3", None])
def test_max_steps_must_be_a_positive_int(max_steps: Any) -> None:
    with pytest.raises(ConfigError, match="max_steps"):
        Agent("a", model=ScriptedModel(["x"]), max_steps=max_steps)


def test_model_without_request_method_is_refused() -> None:
    model: Any = object()
    with pytest.raises(ConfigError, match="request"):
        Agent("a", model=model)


def test_a_model_missing_stream_or_cost_is_refused_naming_what_is_missing() -> None:
    class HalfModel:
        name = "half"

        async def request(self, request: ModelRequest) -> Any:
            return None

    model: Any = HalfModel()
    with pytest.raises(ConfigError, match="missing: stream, cost"):
        Agent("a", model=model)


def test_tools_are_wrapped_and_described_in_order(agent_factory: AgentFactory) -> None:
    agent = agent_factory(["x"], tools=[search, Tool(add, name="plus")])

    assert agent.tool_names == ("search", "plus")
    assert [definition.name for definition in agent.tool_definitions] == ["search", "plus"]
    assert isinstance(agent.tools["search"], Tool)


async def test_model_request_carries_tool_definitions_and_settings(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder(["ok"], seen), tools=[search, add], settings={"temperature": 0.2}
    )

    await orchestrator.execute("go")

    request = seen[0]
    assert [tool.name for tool in request.tools] == ["search", "add"]
    assert request.tools[1].parameters["required"] == ["a", "b"]
    assert dict(request.settings) == {"temperature": 0.2}


# --- tool calls inside a run -----------------------------------------------------------------


async def test_tool_result_goes_back_to_the_model_with_its_call_id(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    call = ToolCallPart(tool_name="add", args={"a": 2, "b": 3}, call_id="add-1")
    orchestrator = orchestrator_factory(recorder([call, "5"], seen), tools=[add])

    result = await orchestrator.execute("2+3?")

    assert result.output == "5"
    assert seen[1].messages[-2] == Message("assistant", [call])
    assert tool_returns(seen[1]) == [
        ToolReturnPart(tool_name="add", content="5", call_id="add-1", is_error=False)
    ]


async def test_several_tool_calls_in_one_answer_run_in_order(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    calls = [
        ToolCallPart(tool_name="search", args={"query": "cats"}, call_id="c1"),
        ToolCallPart(tool_name="add", args={"a": 1, "b": 1}, call_id="c2"),
    ]
    orchestrator = orchestrator_factory(recorder([calls, "done"], seen), tools=[search, add])

    result = await orchestrator.execute("go")

    returns = tool_returns(seen[1])
    assert [(part.tool_name, part.content) for part in returns] == [
        ("search", "results for cats"),
        ("add", "2"),
    ]
    assert [part.call_id for part in returns] == ["c1", "c2"]
    assert result.agents["assistant"].tool_calls == 2


async def test_non_text_tool_value_reaches_the_model_as_json(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []

    def forecast(city: str) -> dict[str, Any]:
        return {"city": city, "temps": [21, 19]}

    orchestrator = orchestrator_factory(
        recorder([tool_call("forecast", city="Oslo"), "cold"], seen), tools=[forecast]
    )

    await orchestrator.execute("weather?")

    assert tool_returns(seen[1])[0].content == '{"city":"Oslo","temps":[21,19]}'


async def test_unknown_tool_goes_back_to_the_model_which_corrects_itself(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    searches: list[str] = []

    def web_search(query: str) -> str:
        searches.append(query)
        return "42"

    bad = ToolCallPart(tool_name="serch", args={"query": "meaning"}, call_id="bad-1")
    script = recorder([bad, tool_call("web_search", query="meaning"), "It is 42."], seen)
    orchestrator = orchestrator_factory(script, tools=[web_search, add])

    result = await orchestrator.execute("meaning of life?")

    assert result.output == "It is 42."
    assert len(seen) == 3
    [error] = tool_returns(seen[1])
    assert error.is_error is True
    assert error.tool_name == "serch"
    assert error.call_id == "bad-1"
    assert error.content == ("unknown tool 'serch'; the tools you can call are: web_search, add")
    [answer] = tool_returns(seen[2])
    assert answer.is_error is False
    assert answer.content == "42"
    assert searches == ["meaning"]
    assert result.agents["assistant"].tool_calls == 2
    assert result.agents["assistant"].model_calls == 3


async def test_unknown_tool_for_an_agent_without_tools_lists_none(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(recorder([tool_call("search"), "sorry"], seen))

    result = await orchestrator.execute("go")

    assert result.output == "sorry"
    [error] = tool_returns(seen[1])
    assert error.is_error is True
    assert error.content.endswith("the tools you can call are: none")


async def test_invalid_tool_arguments_go_back_to_the_model_which_corrects_itself(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    script = recorder(
        [tool_call("add", a="one", b=2, c=3), tool_call("add", a=1, b=2), "It is 3."], seen
    )
    orchestrator = orchestrator_factory(script, tools=[add])

    result = await orchestrator.execute("1+2?")

    assert result.output == "It is 3."
    [error] = tool_returns(seen[1])
    assert error.is_error is True
    assert error.content.startswith("invalid arguments for tool 'add': ")
    assert "a: " in error.content
    assert "c: " in error.content
    [answer] = tool_returns(seen[2])
    assert answer == ToolReturnPart(
        tool_name="add", content="3", call_id=answer.call_id, is_error=False
    )


async def test_transcript_grows_by_assistant_and_tool_messages(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    orchestrator = orchestrator_factory(
        recorder([tool_call("search", query="q"), "done"], seen),
        tools=[search],
        instructions="Be brief.",
    )

    await orchestrator.execute("find q")

    assert [message.role for message in seen[0].messages] == ["system", "user"]
    assert [message.role for message in seen[1].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    assistant = seen[1].messages[2]
    assert isinstance(assistant.parts[0], ToolCallPart)
    assert seen[1].messages[0].parts == [TextPart("Be brief.")]


async def test_agent_runs_on_its_own_orchestrator(agent_factory: AgentFactory) -> None:
    agent = agent_factory(["bonjour"], name="greeter")

    result = await Orchestrator(agent).execute("hello")

    assert result.output == "bonjour"
    assert result.pipeline_id == "greeter"
    assert result.state["greeter"] == "bonjour"
