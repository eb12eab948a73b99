from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from onionskin import (
    Agent,
    AgentResult,
    BaseMiddleware,
    ConfigError,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Pipeline,
    PromptVariableError,
    RunContext,
    Usage,
)
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.testing import tool_call
from tests.conftest import recorder

MILLION = Decimal(1_000_000)


def agent(
    name: str,
    answers: Sequence[ScriptItem],
    seen: list[ModelRequest] | None = None,
    **options: Any,
) -> Agent:
    script = recorder(answers, [] if seen is None else seen)
    return Agent(name, model=ScriptedModel(script, name=f"{name}-model"), **options)


def reply(text: str, input_tokens: int, output_tokens: int) -> ModelResponse:
    return ModelResponse(
        message=Message.assistant(text),
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


# --- hand-over -------------------------------------------------------------------------------


async def test_each_agent_gets_the_previous_output_as_its_user_message() -> None:
    writer_seen: list[ModelRequest] = []
    editor_seen: list[ModelRequest] = []
    critic_seen: list[ModelRequest] = []
    pipeline = Pipeline(
        [
            agent("writer", ["a rough draft"], writer_seen),
            agent("editor", ["a polished draft"], editor_seen),
            agent("critic", ["7/10"], critic_seen),
        ]
    )

    result = await Orchestrator(pipeline).execute("write about owls")

    assert writer_seen[0].messages == [Message.user("write about owls")]
    assert editor_seen[0].messages == [Message.user("a rough draft")]
    assert critic_seen[0].messages == [Message.user("a polished draft")]
    assert result.output == "7/10"


async def test_state_holds_every_agents_output_and_the_input() -> None:
    pipeline = Pipeline([agent("writer", ["draft"]), agent("editor", ["final"])])

    result = await Orchestrator(pipeline).execute("topic", state={"tone": "dry"})

    assert result.state == {
        "tone": "dry",
        "input": "topic",
        "writer": "draft",
        "editor": "final",
    }


async def test_later_agents_quote_earlier_outputs_in_their_instructions() -> None:
    editor_seen: list[ModelRequest] = []
    checker_seen: list[ModelRequest] = []
    pipeline = Pipeline(
        [
            agent("writer", ["Owls are birds."]),
            agent(
                "fact-checker",
                ["verified"],
                checker_seen,
                instructions="Check what {writer} claims.",
            ),
            agent(
                "editor",
                ["done"],
                editor_seen,
                instructions="Draft: {writer} | Check: {fact-checker} | Brief: {input}",
            ),
        ]
    )

    await Orchestrator(pipeline).execute("owls")

    assert editor_seen[0].messages[0] == Message.system(
        "Draft: Owls are birds. | Check: verified | Brief: owls"
    )
    assert checker_seen[0].messages == [
        Message.system("Check what Owls are birds. claims."),
        Message.user("Owls are birds."),
    ]


async def test_quoting_a_later_agent_fails_before_that_agent_calls_its_model() -> None:
    writer_seen: list[ModelRequest] = []
    editor_seen: list[ModelRequest] = []
    pipeline = Pipeline(
        [
            agent("writer", ["draft"], writer_seen, instructions="Please match {editor}."),
            agent("editor", ["final"], editor_seen),
        ]
    )

    with pytest.raises(PromptVariableError) as info:
        await Orchestrator(pipeline).execute("go")

    assert (info.value.key, info.value.agent) == ("editor", "writer")
    assert writer_seen == []
    assert editor_seen == []


async def test_non_text_output_is_handed_on_as_json() -> None:
    class Score(BaseMiddleware):
        def after_agent(
            self, context: RunContext, agent_name: str, result: AgentResult
        ) -> AgentResult | None:
            if agent_name != "scorer":
                return None
            return AgentResult(agent_name=agent_name, output={"score": 3, "tags": ["a"]})

    reporter_seen: list[ModelRequest] = []
    pipeline = Pipeline(
        [agent("scorer", ["three"]), agent("reporter", ["scored 3"], reporter_seen)]
    )

    result = await Orchestrator(pipeline, middleware=[Score()]).execute("rate it")

    assert reporter_seen[0].messages == [Message.user('{"score":3,"tags":["a"]}')]
    assert result.state["scorer"] == {"score": 3, "tags": ["a"]}
    assert result.output == "scored 3"


async def test_a_failing_agent_stops_the_pipeline() -> None:
    last_seen: list[ModelRequest] = []
    pipeline = Pipeline(
        [
            agent("first", ["ok"]),
            Agent("second", model=ScriptedModel([])),
            agent("third", ["never"], last_seen),
        ]
    )

    with pytest.raises(ModelError, match="held 0"):
        await Orchestrator(pipeline).execute("go")

    assert last_seen == []


async def test_pipeline_name_defaults_to_its_first_agent() -> None:
    default = Pipeline([agent("writer", ["a"]), agent("editor", ["b"])])
    named = Pipeline([agent("writer", ["a"])], name="blog-post")

    assert default.name == "writer"
    assert (await Orchestrator(named).execute("x")).pipeline_id == "blog-post"


# --- stats and costs -------------------------------------------------------------------------


async def test_per_agent_stats_add_up_to_the_runs_usage() -> None:
    writer = agent(
        "writer",
        [
            ModelResponse(
                message=Message("assistant", [tool_call("lookup", topic="owls")]),
                usage=Usage(input_tokens=10, output_tokens=3),
            ),
            reply("draft", 20, 5),
        ],
        tools=[lookup],
    )
    editor = agent("editor", [reply("final", 7, 2)])

    result = await Orchestrator(Pipeline([writer, editor])).execute("owls")

    assert list(result.agents) == ["writer", "editor"]
    stats = result.agents["writer"]
    assert (stats.model_calls, stats.tool_calls) == (2, 1)
    assert stats.usage == Usage(input_tokens=30, output_tokens=8)
    stats = result.agents["editor"]
    assert (stats.model_calls, stats.tool_calls) == (1, 0)
    assert stats.usage == Usage(input_tokens=7, output_tokens=2)
    assert result.usage == Usage(input_tokens=37, output_tokens=10)
    assert result.usage.total_tokens == 47
    assert result.cost_usd == Decimal(0)


async def test_costs_are_exact_decimals_from_per_million_prices() -> None:
    writer = Agent(
        "writer",
        model=ScriptedModel(
            [reply("draft", 30, 8)],
            input_price_per_mtok="0.15",
            output_price_per_mtok="0.60",
        ),
    )
    editor = Agent(
        "editor",
        model=ScriptedModel(
            [reply("final", 7, 2)], input_price_per_mtok=3, output_price_per_mtok=Decimal(15)
        ),
    )

    result = await Orchestrator(Pipeline([writer, editor])).execute("go")

    assert result.agents["writer"].cost == Decimal("0.0000093")
    assert result.agents["editor"].cost == Decimal("0.000051")
    assert result.cost_usd == Decimal("0.0000603")
    assert isinstance(result.cost_usd, Decimal)


async def test_costs_of_estimated_usage_match_the_prices() -> None:
    prices = {"input_price_per_mtok": "2.5", "output_price_per_mtok": "10"}
    writer = Agent(
        "writer",
        model=ScriptedModel([tool_call("lookup", topic="owls"), "a draft"], **prices),
        tools=[lookup],
    )
    editor = Agent("editor", model=ScriptedModel(["the final text"], **prices))

    result = await Orchestrator(Pipeline([writer, editor])).execute("tell me about owls")

    total = Decimal(0)
    for stats in result.agents.values():
        usage = stats.usage
        assert usage.input_tokens > 0
        assert usage.output_tokens > 0
        expected = (
            usage.input_tokens * Decimal("2.5") + usage.output_tokens * Decimal(10)
        ) / MILLION
        assert stats.cost == expected
        total += expected
    assert result.cost_usd == total
    assert result.usage == result.agents["writer"].usage + result.agents["editor"].usage


async def test_usage_of_one_run_does_not_leak_into_the_next() -> None:
    model = ScriptedModel([reply("one", 5, 1), reply("two", 8, 2)], input_price_per_mtok=1)
    orchestrator = Orchestrator(Agent("solo", model=model))

    first = await orchestrator.execute("a")
    second = await orchestrator.execute("b")

    assert first.usage == Usage(input_tokens=5, output_tokens=1)
    assert second.usage == Usage(input_tokens=8, output_tokens=2)
    assert second.cost_usd == Decimal("0.000008")
    assert second.agents["solo"].model_calls == 1


# --- construction --------------------------------------------------------------------------


def test_empty_pipeline_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one agent"):
        Pipeline([])


def test_duplicate_agent_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="distinct names"):
        Pipeline([agent("writer", ["a"]), agent("editor", ["b"]), agent("writer", ["c"])])


def test_same_agent_twice_is_refused() -> None:
    writer = agent("writer", ["a", "b"])
    with pytest.raises(ConfigError, match="distinct names"):
        Pipeline([writer, writer])


@pytest.mark.parametrize("name", ["", "../x", "a b", "a.b", "x" * 65])
def test_bad_pipeline_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="pipeline name"):
        Pipeline([agent("writer", ["a"])], name=name)


def test_orchestrator_refuses_something_that_is_no_pipeline() -> None:
    not_a_pipeline: Any = [agent("writer", ["a"])]
    with pytest.raises(ConfigError, match="Pipeline or an Agent"):
        Orchestrator(not_a_pipeline)


async def test_a_turn_redirected_to_another_agent_is_counted_for_that_agent() -> None:
    from collections.abc import Awaitable, Callable
    from dataclasses import replace

    from onionskin import AgentCall

    spare = Agent("spare", model=ScriptedModel(["from spare"]))

    class Redirect:
        async def wrap_agent(
            self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
        ) -> AgentResult:
            return await next(replace(call, agent=spare))

    main = Agent("main", model=ScriptedModel(["from main"]))
    result = await Orchestrator(main, middleware=[Redirect()]).execute("hi")

    assert result.output == "from spare"
    assert result.agents["spare"].model_calls == 1
    assert result.agents["main"].model_calls == 0
