"""Agent and pipeline names: path tricks are refused, from files and from requests alike."""

from __future__ import annotations

import shutil

import pytest

from onionskin import ConfigError
from onionskin.project import ProjectError, UnknownAgentError, load_project
from tests.project.conftest import LoadProject, WriteProject

TRICKS = [
    "../x",
    "../../etc/passwd",
    "a/b",
    "..",
    ".",
    ".hidden",
    "a\\b",
    "a\x00b",
    "x" * 65,
    "",
    "-flag",
    "a b",
    "a.b",
    "agent\n",
    "/abs",
    "C:\\agents\\a",
]


@pytest.mark.parametrize("name", TRICKS)
@pytest.mark.parametrize("method", ["agent", "pipeline", "orchestrator"])
def test_a_path_trick_in_a_requested_name_is_refused(
    load: LoadProject, name: str, method: str
) -> None:
    project = load({"agents/assistant.yaml": ""})

    with pytest.raises(ConfigError, match="must be 1-64 letters") as raised:
        getattr(project, method)(name)

    assert not isinstance(raised.value, UnknownAgentError)


@pytest.mark.parametrize("name", [None, 3, b"assistant", ["assistant"]])
def test_a_name_that_is_not_text_is_refused(load: LoadProject, name: object) -> None:
    project = load({"agents/assistant.yaml": ""})

    with pytest.raises(ConfigError, match="must be 1-64 letters"):
        project.orchestrator(name)  # type: ignore[arg-type]


def test_names_are_checked_without_touching_the_filesystem(write_project: WriteProject) -> None:
    root = write_project({"agents/assistant.yaml": ""})
    project = load_project(root)
    shutil.rmtree(root)  # everything was read at load time

    assert project.orchestrator("assistant").pipeline.name == "assistant"
    with pytest.raises(ConfigError, match="must be 1-64 letters"):
        project.orchestrator("../assistant")


def test_an_unknown_valid_name_lists_the_known_ones(load: LoadProject) -> None:
    project = load(
        {"agents/b.yaml": "", "agents/a.yaml": "", "pipelines/both.yaml": "agents: [a, b]\n"}
    )

    with pytest.raises(UnknownAgentError) as raised:
        project.orchestrator("c")

    assert (raised.value.name, raised.value.known) == ("c", ("a", "b", "both"))
    assert str(raised.value) == "the project has no agent or pipeline named 'c' (known: a, b, both)"
    with pytest.raises(UnknownAgentError, match=r"\(known: a, b\)"):
        project.agent("both")  # a pipeline is not an agent


@pytest.mark.parametrize(
    "file_name", [".hidden.yaml", "my.agent.yaml", "-x.yaml", "with space.yaml", "x" * 65 + ".yaml"]
)
def test_an_agent_file_whose_name_is_not_a_valid_name_is_reported(
    load: LoadProject, file_name: str
) -> None:
    with pytest.raises(ProjectError) as raised:
        load({f"agents/{file_name}": ""})

    assert raised.value.path == f"agents/{file_name}"
    assert "the file name is not a valid name" in str(raised.value)


def test_a_pipeline_file_whose_name_is_not_a_valid_name_is_reported(load: LoadProject) -> None:
    with pytest.raises(ProjectError) as raised:
        load({"agents/a.yaml": "", "pipelines/v1.0.yaml": "agents: [a]\n"})

    assert raised.value.path == "pipelines/v1.0.yaml"


def test_valid_names_with_dashes_and_underscores_load(load: LoadProject) -> None:
    project = load({"agents/customer-support.yaml": "", "agents/invoice_processor2.yaml": ""})

    assert sorted(project.agents) == ["customer-support", "invoice_processor2"]
    assert project.agent("customer-support").name == "customer-support"
