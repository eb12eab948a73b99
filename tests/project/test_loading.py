"""Loading a project folder: agent YAML, tools, pipelines and settings, and their errors."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from onionskin import Agent, ConfigError, Pipeline
from onionskin.project import ProjectError, ProjectSettings, UnknownAgentError, load_project
from tests.project.conftest import LoadProject, Models, WriteProject

SEARCH = '''
def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"
'''


def error_of(load: LoadProject, files: dict[str, str]) -> ProjectError:
    with pytest.raises(ProjectError) as raised:
        load(files)
    return raised.value


# --- a valid project -----------------------------------------------------------------------


async def test_an_agent_file_becomes_an_agent_with_its_fields(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            "agents/assistant.yaml": """
                model: openai:gpt-4o-mini
                description: Answers questions.
                instructions: You help {user}.
                tools: [search]
                settings: {temperature: 0.2, max_tokens: 300}
                provider: {base_url: "http://localhost:9999/v1", api_key_env: LOCAL_KEY}
                max_steps: 3
            """,
            "tools/web.py": SEARCH,
        }
    )

    agent = project.agent("assistant")
    spec = project.agents["assistant"]

    assert isinstance(agent, Agent)
    assert (agent.name, agent.instructions, agent.max_steps) == ("assistant", "You help {user}.", 3)
    assert agent.tool_names == ("search",)
    assert dict(agent.settings) == {"temperature": 0.2, "max_tokens": 300}
    assert spec.description == "Answers questions."
    ((model, options),) = models.resolved
    assert model == "openai:gpt-4o-mini"
    assert dict(options.settings) == {
        "base_url": "http://localhost:9999/v1",
        "api_key_env": "LOCAL_KEY",
    }
    result = await project.orchestrator("assistant").execute("hi", state={"user": "Ada"})
    assert result.output == "echo: hi"
    assert models.seen[0].settings == {"temperature": 0.2, "max_tokens": 300}


def test_an_empty_agent_file_is_a_scripted_agent_with_defaults(write_project: WriteProject) -> None:
    project = load_project(write_project({"agents/plain.yaml": ""}))

    agent = project.agent("plain")

    assert agent.model.name == "scripted"
    assert (agent.instructions, agent.tool_names, agent.max_steps) == ("", (), 10)
    assert project.pipelines == {}
    assert project.settings == ProjectSettings()


def test_tools_are_the_public_functions_each_file_defines(load: LoadProject) -> None:
    project = load(
        {
            "agents/a.yaml": "tools: [search, fetch]\n",
            "tools/web.py": SEARCH
            + '''
from os.path import join  # imported: not a tool

def _private(x: int) -> int:
    return x

def fetch(url: str) -> str:
    """Fetch a page."""
    return url

VALUE = 3
''',
            "tools/_helpers.py": "raise RuntimeError('helpers are not tool files')\n",
        }
    )

    assert sorted(project.tools) == ["fetch", "search"]
    assert project.tools["search"].definition.description == "Search the web."


def test_two_projects_with_the_same_tool_file_do_not_share_it(tmp_path: Path) -> None:
    roots = []
    for answer in ("first", "second"):
        root = tmp_path / answer
        (root / "agents").mkdir(parents=True)
        (root / "agents" / "a.yaml").write_text("tools: [which]\n")
        (root / "tools").mkdir()
        (root / "tools" / "t.py").write_text(f"def which() -> str:\n    return {answer!r}\n")
        roots.append(root)

    first, second = (load_project(root) for root in roots)

    assert first.tools["which"].function() == "first"
    assert second.tools["which"].function() == "second"


def test_project_settings_come_from_onionskin_yaml(load: LoadProject) -> None:
    project = load(
        {
            "onionskin.yaml": """
                database_url: sqlite:///data.db
                plugins:
                  audit: {level: full}
                  quiet:
            """,
        }
    )

    assert project.settings.database_url == "sqlite:///data.db"
    assert project.settings.plugins == {"audit": {"level": "full"}, "quiet": {}}


def test_unknown_project_setting_is_an_error_naming_the_file(load: LoadProject) -> None:
    error = error_of(load, {"onionskin.yaml": "database_url: x\ndatabse: y\n"})

    assert (error.path, error.line, error.field) == ("onionskin.yaml", 2, "databse")
    assert "unknown field" in str(error)


async def test_a_pipeline_file_runs_its_agents_in_order(load: LoadProject, models: Models) -> None:
    project = load(
        {
            "agents/writer.yaml": "",
            "agents/editor.yaml": "",
            "pipelines/publish.yaml": "description: Write, then edit.\nagents: [writer, editor]\n",
        }
    )

    pipeline = project.pipeline("publish")
    result = await project.orchestrator("publish").execute("topic")

    assert project.pipelines == {"publish": ("writer", "editor")}
    assert project.pipeline_specs["publish"].description == "Write, then edit."
    assert isinstance(pipeline, Pipeline)
    assert [a.name for a in pipeline.agents] == ["writer", "editor"]
    assert result.output == "echo: echo: topic"


def test_an_agent_name_is_a_one_agent_pipeline(load: LoadProject) -> None:
    project = load({"agents/solo.yaml": ""})

    pipeline = project.pipeline("solo")

    assert pipeline.name == "solo"
    assert [a.name for a in pipeline.agents] == ["solo"]


# --- malformed and invalid files -----------------------------------------------------------


def test_malformed_yaml_is_reported_with_file_and_line(load: LoadProject) -> None:
    error = error_of(
        load, {"agents/assistant.yaml": "model: scripted\ninstructions: [unclosed\ntools: []\n"}
    )

    assert error.path == "agents/assistant.yaml"
    assert error.line == 3
    assert str(error).startswith("agents/assistant.yaml, line 3: malformed YAML")


def test_a_tab_indent_is_reported_with_its_line(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "model: scripted\nsettings:\n\ttemperature: 1\n"})

    assert (error.path, error.line) == ("agents/a.yaml", 3)


def test_a_file_that_is_not_a_mapping_is_an_error(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "- model\n- tools\n"})

    assert str(error) == "agents/a.yaml, line 1: the file must hold a mapping of fields, got list"


def test_a_repeated_key_is_an_error_with_its_line(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "instructions: one\nmodel: x\ninstructions: two\n"})

    assert (error.line, "appears twice" in str(error)) == (3, True)


def test_an_unknown_field_is_reported_with_its_line_and_the_known_fields(
    load: LoadProject,
) -> None:
    error = error_of(load, {"agents/a.yaml": "model: scripted\ninstruction: Be brief.\n"})

    assert (error.path, error.line, error.field) == ("agents/a.yaml", 2, "instruction")
    assert "unknown field (the fields are: model, instructions," in str(error)


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("tools: search\n", "tools", 1),
        ("model: scripted\ninstructions: 42\n", "instructions", 2),
        ("max_steps: '5'\n", "max_steps", 1),
        ("max_steps: 0\n", "max_steps", 1),
        ("max_steps: true\n", "max_steps", 1),
        ("settings: [temperature]\n", "settings", 1),
        ("tools:\n  - search\n  - 7\n", "tools[1]", 3),
        ("middleware:\n  - use: 3\n", "middleware[0].use", 2),
        ("middleware: [not an import string]\n", "middleware[0].use", 1),
        ("middleware:\n  - {use: 'a:b', with: [1]}\n", "middleware[0].with", 2),
        ("model: 3\n", "model", 1),
    ],
)
def test_a_wrong_type_names_the_field_and_line(
    load: LoadProject, text: str, field: str, line: int
) -> None:
    error = error_of(load, {"agents/a.yaml": text, "tools/web.py": SEARCH})

    assert (error.path, error.field, error.line) == ("agents/a.yaml", field, line)


def test_an_unknown_tool_names_the_tool_and_the_known_ones(load: LoadProject) -> None:
    error = error_of(
        load,
        {
            "agents/assistant.yaml": "model: scripted\ntools:\n  - search\n  - serch\n",
            "tools/web.py": SEARCH + "\ndef fetch(url: str) -> str:\n    return url\n",
        },
    )

    assert str(error) == (
        "agents/assistant.yaml, line 4: tools[1]: no tool named 'serch' in tools/ "
        "(known: fetch, search)"
    )


def test_a_tool_listed_twice_is_an_error(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "tools: [search, search]\n", "tools/w.py": SEARCH})

    assert error.field == "tools[1]"


def test_the_same_tool_name_in_two_files_names_both_files(load: LoadProject) -> None:
    error = error_of(load, {"tools/a_web.py": SEARCH, "tools/b_more.py": SEARCH})

    assert error.path == "tools/b_more.py"
    assert "tools/a_web.py" in str(error)
    assert error.field == "search"


def test_a_tools_file_that_raises_on_import_is_named_with_its_line(load: LoadProject) -> None:
    error = error_of(load, {"tools/broken.py": "import os\n\nVALUE = 1 / 0\n", "agents/a.yaml": ""})

    assert (error.path, error.line) == ("tools/broken.py", 3)
    assert "ZeroDivisionError" in str(error)


def test_a_tools_file_with_a_syntax_error_is_named_with_its_line(load: LoadProject) -> None:
    error = error_of(load, {"tools/broken.py": "def ok():\n    return 1\ndef bad(:\n"})

    assert (error.path, error.line) == ("tools/broken.py", 3)


def test_a_function_that_cannot_be_a_tool_is_named(load: LoadProject) -> None:
    error = error_of(load, {"tools/t.py": "def many(*args):\n    return args\n"})

    assert (error.path, error.field, error.line) == ("tools/t.py", "many", 1)


def test_an_unknown_model_provider_names_the_model_field(write_project: WriteProject) -> None:
    root = write_project({"agents/a.yaml": "instructions: hi\nmodel: nosuch:thing\n"})

    with pytest.raises(ProjectError) as raised:
        load_project(root)

    assert (raised.value.field, raised.value.line) == ("model", 2)
    assert "unknown model provider 'nosuch'" in str(raised.value)


def test_malformed_instructions_name_the_field(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "instructions: 'Use {unclosed'\n"})

    assert (error.field, error.line) == ("instructions", 1)


def test_a_yml_agent_file_is_reported(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yml": ""})

    assert error.path == "agents/a.yml"
    assert "end in .yaml" in str(error)


def test_a_project_without_agents_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"^agents/: the project has no agents/ folder"):
        load_project(tmp_path)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="is not a directory"):
        load_project(tmp_path / "missing")


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("agents: [writer, ghost]\n", "agents[1]", "no agent named 'ghost'"),
        ("agents: [writer, writer]\n", "agents[1]", "listed twice"),
        ("agents: []\n", "agents", "at least 1 item"),
        ("agents: [writer]\nsteps: 3\n", "steps", "unknown field"),
    ],
)
def test_an_invalid_pipeline_file_is_reported(
    load: LoadProject, text: str, field: str, problem: str
) -> None:
    error = error_of(load, {"agents/writer.yaml": "", "pipelines/p.yaml": text})

    assert (error.path, error.field) == ("pipelines/p.yaml", field)
    assert problem in str(error)


def test_a_pipeline_cannot_share_an_agents_name(load: LoadProject) -> None:
    error = error_of(load, {"agents/writer.yaml": "", "pipelines/writer.yaml": "agents: [writer]"})

    assert error.path == "pipelines/writer.yaml"


def test_project_errors_survive_pickling() -> None:
    error = ProjectError("agents/a.yaml", "no tool named 'x'", line=3, field="tools[0]")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.path, copy.line, copy.field, str(copy)) == (
        "agents/a.yaml",
        3,
        "tools[0]",
        "agents/a.yaml, line 3: tools[0]: no tool named 'x'",
    )
    assert isinstance(copy, ConfigError)


def test_a_forbidden_character_is_reported_with_its_line(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "model: scripted\ninstructions: bell \x07\n"})

    assert (error.path, error.line) == ("agents/a.yaml", 2)
    assert "unacceptable character" in str(error)


def test_a_file_that_is_not_utf8_is_reported(write_project: WriteProject) -> None:
    root = write_project({})
    (root / "agents" / "a.yaml").write_bytes(b"instructions: caf\xe9\n")

    with pytest.raises(ProjectError, match=r"^agents/a\.yaml: cannot read the file"):
        load_project(root)


def test_every_invalid_field_is_listed_after_the_first(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "model: 1\ntools: x\n"})

    assert (error.field, error.line) == ("model", 1)
    assert "(also: tools: Input should be a valid list, got str 'x')" in str(error)


def test_an_unknown_field_inside_a_middleware_entry_is_named(load: LoadProject) -> None:
    error = error_of(load, {"agents/a.yaml": "middleware:\n  - use: a:b\n    args: {}\n"})

    assert (error.field, error.line, error.problem) == ("middleware[0].args", 3, "unknown field")


def test_plugins_must_be_a_mapping(load: LoadProject) -> None:
    error = error_of(load, {"onionskin.yaml": "plugins: [audit]\n"})

    assert (error.path, error.field) == ("onionskin.yaml", "plugins")


def test_other_files_in_agents_are_ignored_with_a_debug_log(
    load: LoadProject, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="onionskin.project"):
        project = load({"agents/a.yaml": "", "agents/README.md": "# agents\n"})

    assert list(project.agents) == ["a"]
    assert "agents/README.md: not an agent file" in caplog.text


def test_a_model_resolver_returning_no_model_is_reported(write_project: WriteProject) -> None:
    root = write_project({"agents/a.yaml": ""})

    with pytest.raises(ProjectError, match=r"^agents/a\.yaml: agent 'a': .* is not a Model"):
        load_project(root, model_resolver=lambda spec, options: object())  # type: ignore[arg-type,return-value]


def test_unknown_agent_errors_survive_pickling() -> None:
    error = UnknownAgentError("c", ("a", "b"))

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.name, copy.known, str(copy)) == ("c", ("a", "b"), str(error))
