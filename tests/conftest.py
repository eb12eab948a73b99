"""Shared fixtures: factories for agents and orchestrators on scripted models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from onionskin import Agent, Orchestrator
from onionskin.runtime.models.scripted import Script, ScriptedModel

AgentFactory = Callable[..., Agent]
OrchestratorFactory = Callable[..., Orchestrator]


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
