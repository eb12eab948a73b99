"""Shared fixtures: factories for agents and orchestrators on scripted models."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from onionskin import Agent, ModelRequest, Orchestrator
from onionskin.runtime.models.scripted import Script, ScriptedModel, ScriptItem

AgentFactory = Callable[..., Agent]
OrchestratorFactory = Callable[..., Orchestrator]


def recorder(
    answers: Sequence[ScriptItem], seen: list[ModelRequest]
) -> Callable[[ModelRequest], ScriptItem]:
    """A function script answering `answers` in order and recording every request."""
    remaining = list(answers)

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return remaining.pop(0)

    return script


@pytest.fixture
def agent_factory() -> AgentFactory:
    """Build an agent on a scripted model: `agent_factory(script, name=..., tools=...)`."""

    def build(script: Script, *, name: str = "assistant", **options: Any) -> Agent:
        return Agent(name, model=ScriptedModel(script), **options)

    return build


@pytest.fixture
def orchestrator_factory(agent_factory: AgentFactory) -> OrchestratorFactory:
    """Build a one-agent orchestrator: `orchestrator_factory(script, middleware=[...])`."""

    def build(
        script: Script, *, middleware: Iterable[object] = (), **agent_options: Any
    ) -> Orchestrator:
        return Orchestrator(agent_factory(script, **agent_options), middleware=middleware)

    return build
