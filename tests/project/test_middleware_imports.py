"""An agent's `middleware:` list: import strings, kwargs, errors, and where they sit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from onionskin import (
    Agent,
    AgentCall,
    AgentResult,
    EmptyModelResponseError,
    Message,
    ModelResponse,
)
from onionskin.project import ProjectError
from onionskin.project._scoped import AgentScoped
from onionskin.runtime.models.scripted import ScriptedModel
from tests.project import sample_middleware
from tests.project.conftest import LoadProject, Models

SAMPLE = "tests.project.sample_middleware"


@pytest.fixture(autouse=True)
def model_calls() -> Iterator[list[str]]:
    sample_middleware.MODEL_CALLS.clear()
    sample_middleware.RUN_EVENTS.clear()
    yield sample_middleware.MODEL_CALLS
    sample_middleware.MODEL_CALLS.clear()
    sample_middleware.RUN_EVENTS.clear()


def agent_with(middleware: str) -> dict[str, str]:
    return {"agents/assistant.yaml": f"middleware:\n{middleware}"}


@pytest.mark.parametrize(
    ("entry", "tag"),
    [
        (f"  - {SAMPLE}:Tagger\n", "tagged"),  # a class, called without kwargs
        (f"  - use: {SAMPLE}:Tagger\n    with: {{tag: custom}}\n", "custom"),  # with kwargs
        (f"  - {SAMPLE}:ready_made\n", "ready"),  # an object, used as is
        (f"  - use: {SAMPLE}:make_tagger\n    with: {{tag: loud}}\n", "LOUD"),  # a factory
    ],
)
async def test_an_import_string_builds_the_middleware(
    load: LoadProject, entry: str, tag: str
) -> None:
    project = load(agent_with(entry))

    result = await project.orchestrator("assistant").execute("hi")

    assert result.output == f"echo: hi [{tag}]"


def test_an_onion_function_is_used_as_is(load: LoadProject) -> None:
    project = load(agent_with(f"  - {SAMPLE}:passthrough\n"))

    orchestrator = project.orchestrator("assistant", entry_points=False, capture=False)

    assert orchestrator.middleware == (sample_middleware.passthrough,)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("  - no_such_package.mw:Thing\n", "cannot import module 'no_such_package.mw'"),
        (f"  - {SAMPLE}:Nope\n", f"'{SAMPLE}' has no attribute 'Nope'"),
        (f"  - use: {SAMPLE}:Tagger\n    with: {{colour: red}}\n", "raised TypeError"),
        (f"  - use: {SAMPLE}:broken_factory\n    with: {{}}\n", "no database configured"),
        (f"  - {SAMPLE}:NOT_MIDDLEWARE\n", "is not a middleware"),
        (f"  - use: {SAMPLE}:NOT_MIDDLEWARE\n    with: {{a: 1}}\n", "cannot take 'with'"),
    ],
)
def test_a_bad_import_string_names_the_file_field_and_line(
    load: LoadProject, entry: str, problem: str
) -> None:
    with pytest.raises(ProjectError) as raised:
        load(agent_with(f"  - {SAMPLE}:Tagger\n" + entry))

    error = raised.value
    assert (error.path, error.field, error.line) == ("agents/assistant.yaml", "middleware[1]", 3)
    assert problem in str(error)


class Outer:
    """A middleware given to `orchestrator()`: it must sit outside the project's own."""

    async def wrap_agent(
        self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        result = await next(call)
        result.output = f"{result.output} [outer]"
        return result


async def test_the_stack_is_given_then_yaml_then_file_middleware(load: LoadProject) -> None:
    project = load(
        {
            **agent_with(f"  - {SAMPLE}:Tagger\n"),
            "middleware/assistant.py": "def after(r, ctx):\n    return r + ' (file)'\n",
        }
    )
    outer = Outer()

    orchestrator = project.orchestrator("assistant", middleware=[outer], entry_points=False)
    result = await orchestrator.execute("hi")

    # Innermost changes the output first: the file, then the YAML middleware, then ours.
    assert result.output == "echo: hi (file) [tagged] [outer]"
    assert orchestrator.middleware[0] is outer
    names = [type(item).__name__ for item in orchestrator.middleware]
    assert names == ["Outer", "Tagger", "FileMiddleware", "MessageCaptureMiddleware"]


async def test_in_a_pipeline_an_agents_middleware_acts_on_its_own_turns_only(
    load: LoadProject, models: Models, model_calls: list[str]
) -> None:
    project = load(
        {
            "agents/writer.yaml": f"middleware: ['{SAMPLE}:Tagger']\n",
            "agents/editor.yaml": "",
            "agents/critic.yaml": f"middleware:\n  - use: {SAMPLE}:Tagger\n    with: {{tag: c}}\n",
            "pipelines/review.yaml": "agents: [writer, editor, critic]\n",
        }
    )

    result = await project.orchestrator("review").execute("draft")

    assert model_calls == ["tagged:writer", "c:critic"]
    outputs = {name: result.state[name] for name in ("writer", "editor", "critic")}
    assert outputs == {
        "writer": "echo: draft [tagged]",
        "editor": "echo: echo: draft [tagged]",
        "critic": "echo: echo: echo: draft [tagged] [c]",
    }
    assert len(models.seen) == 3


async def test_in_a_pipeline_an_agents_run_level_hooks_see_the_whole_run(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            "agents/writer.yaml": f"middleware: ['{SAMPLE}:RunWatcher']\n",
            "agents/editor.yaml": "",
            "pipelines/review.yaml": "agents: [writer, editor]\n",
        }
    )
    # The editor's model answers with nothing at all: EmptyModelResponseError fails the run.
    models.answers = ["draft", ModelResponse(message=Message("assistant", []))]

    with pytest.raises(EmptyModelResponseError):
        await project.orchestrator("review").execute("topic")

    assert sample_middleware.RUN_EVENTS == ["start:review", "error:EmptyModelResponseError"]


def test_a_middleware_module_that_raises_on_import_is_reported(
    load: LoadProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "exploding_mw_for_test.py").write_text("raise RuntimeError('no config')\n")
    monkeypatch.syspath_prepend(str(modules))

    with pytest.raises(ProjectError) as raised:
        load(agent_with("  - exploding_mw_for_test:Thing\n"))

    assert raised.value.field == "middleware[0]"
    assert "raised RuntimeError on import: no config" in str(raised.value)


class Unreferenceable:
    """A handler that takes no weak reference: the scope folds around it on every call."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call: AgentCall) -> AgentResult:
        self.calls += 1
        return AgentResult(agent_name=call.agent_name, output="inner")


async def test_a_scoped_middleware_works_around_any_next_handler() -> None:
    scoped = AgentScoped(sample_middleware.Tagger("t"), "writer")
    nxt = Unreferenceable()
    writer = Agent("writer", model=ScriptedModel(["x"]))
    other = Agent("other", model=ScriptedModel(["x"]))

    mine = await scoped.wrap_agent(AgentCall(agent=writer, content=Message.user("hi")), nxt)  # type: ignore[attr-defined]
    theirs = await scoped.wrap_agent(AgentCall(agent=other, content=Message.user("hi")), nxt)  # type: ignore[attr-defined]

    assert (mine.output, theirs.output, nxt.calls) == ("inner [t]", "inner", 2)
    assert repr(scoped).startswith("AgentScoped(")
