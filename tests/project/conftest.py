"""Fixtures for project folders: write a small project, and models that record what they see."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from onionskin import ModelRequest
from onionskin.core.calls import Model
from onionskin.project import Project, load_project
from onionskin.runtime.models.resolve import ModelOptions
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.testing import FakeClock

WriteProject = Callable[[dict[str, str]], Path]
LoadProject = Callable[[dict[str, str]], Project]


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """`write_project({"agents/a.yaml": "...", ...})`: the files (dedented) under one folder."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "project"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        (root / "agents").mkdir(parents=True, exist_ok=True)
        return root

    return write


@dataclass
class Models:
    """A model resolver whose scripted models record every request.

    Each model answers from `answers` (shared, in order) when given, else echoes the last
    user message's text, so tests can read what the agent was asked.
    """

    seen: list[ModelRequest] = field(default_factory=list)
    resolved: list[tuple[str, ModelOptions]] = field(default_factory=list)
    answers: list[ScriptItem] = field(default_factory=list)

    def script(self, request: ModelRequest) -> ScriptItem:
        self.seen.append(request)
        if self.answers:
            return self.answers.pop(0)
        return f"echo: {request.messages[-1].text}"

    def resolve(self, spec: str, options: ModelOptions) -> Model:
        self.resolved.append((spec, options))
        return ScriptedModel(self.script, name=spec)

    def system_prompts(self) -> Sequence[str]:
        return [m.text for request in self.seen for m in request.messages if m.role == "system"]


@pytest.fixture
def models() -> Models:
    return Models()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def load(write_project: WriteProject, models: Models, clock: FakeClock) -> LoadProject:
    """`load({...files})`: write the project and load it with the recording models."""

    def build(files: dict[str, str]) -> Project:
        return load_project(write_project(files), clock=clock, model_resolver=models.resolve)

    return build
