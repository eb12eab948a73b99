"""Loading `middleware/<agent>.py` files, and `FileMiddleware` used directly."""

from __future__ import annotations

import pytest

from onionskin import (
    Agent,
    AgentResult,
    ConfigError,
    InvalidInputError,
    Message,
    Orchestrator,
    TextPart,
)
from onionskin.core.messages import ToolReturnPart
from onionskin.project import FileMiddleware, ProjectError
from onionskin.runtime.models.scripted import ScriptedModel
from tests.project.conftest import LoadProject

ASSISTANT = {"agents/assistant.yaml": ""}


@pytest.mark.parametrize(
    ("source", "problem", "line"),
    [
        ("HELPER = 1\n", "defines neither before(content, context) nor after(", None),
        ("def before(content):\n    return content\n", "before() must take two arguments", None),
        ("def after():\n    return ''\n", "after() must take two arguments: (response,", None),
        ("before = 3\n", "before must be a function, got int", None),
        ("import json\n\nraise ImportError('needs httpx')\n", "raised ImportError", 3),
        ("def before(content, context)\n    return content\n", "raised SyntaxError", 1),
    ],
)
def test_an_invalid_middleware_file_is_reported_at_load(
    load: LoadProject, source: str, problem: str, line: int | None
) -> None:
    with pytest.raises(ProjectError) as raised:
        load({**ASSISTANT, "middleware/assistant.py": source})

    assert (raised.value.path, raised.value.line) == ("middleware/assistant.py", line)
    assert problem in str(raised.value)


def test_files_starting_with_an_underscore_are_skipped(load: LoadProject) -> None:
    project = load({**ASSISTANT, "middleware/__init__.py": "raise RuntimeError('skipped')\n"})

    core = project.orchestrator("assistant", entry_points=False, capture=False)
    assert core.middleware == ()


async def test_file_middleware_can_be_used_without_a_project() -> None:
    def after(response: str, context: dict[str, object]) -> str:
        return f"{response}!"

    agent = Agent("helper", model=ScriptedModel(["hello"]))
    middleware = FileMiddleware("helper", after=after)

    result = await Orchestrator(agent, middleware=[middleware]).execute("hi")

    assert result.output == "hello!"
    assert middleware.source == "middleware/helper.py"


def test_file_middleware_needs_a_hook_and_a_valid_agent_name() -> None:
    with pytest.raises(ProjectError, match="defines neither"):
        FileMiddleware("helper")
    with pytest.raises(ConfigError, match="must be 1-64 letters"):
        FileMiddleware("../helper", after=lambda response, context: response)


class DictOutput:
    """An inner middleware that turns the agent's text into a dict."""

    def after_agent(self, context: object, agent_name: str, result: AgentResult) -> AgentResult:
        return AgentResult(agent_name=agent_name, output={"text": result.output})


async def test_after_gets_a_non_text_output_as_json() -> None:
    seen: list[str] = []

    def after(response: str, context: dict[str, object]) -> str:
        seen.append(response)
        return response

    agent = Agent("helper", model=ScriptedModel(["hello"]))
    middleware = FileMiddleware("helper", after=after)

    await Orchestrator(agent, middleware=[middleware, DictOutput()]).execute("hi")

    assert seen == ['{"text":"hello"}']
    assert repr(middleware) == (
        "FileMiddleware('helper', source='middleware/helper.py', hooks=['after'])"
    )


async def test_before_refuses_input_with_tool_parts() -> None:
    def before(content: dict[str, object], context: dict[str, object]) -> dict[str, object]:
        return content

    model = ScriptedModel(["never"])
    orchestrator = Orchestrator(
        Agent("helper", model=model), middleware=[FileMiddleware("helper", before=before)]
    )
    message = Message("user", [TextPart("hi"), ToolReturnPart(tool_name="t", content="x")])

    with pytest.raises(InvalidInputError, match="text and data parts only, got ToolReturnPart"):
        await orchestrator.execute(message)
