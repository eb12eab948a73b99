"""`agents/<name>.yaml` files, validated and built into agents with their middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from onionskin.core.calls import Model
from onionskin.core.errors import ConfigError
from onionskin.project._imports import build_middleware
from onionskin.project._specs import load_spec
from onionskin.project._tools import unknown_tool_problem
from onionskin.project._yaml import field_path, line_of
from onionskin.project.errors import ProjectError
from onionskin.project.spec import AgentSpec
from onionskin.runtime._prompt import PromptTemplate
from onionskin.runtime.agent import Agent, check_agent_name
from onionskin.runtime.models.resolve import ModelOptions
from onionskin.runtime.tool import Tool

logger = logging.getLogger("onionskin.project")

ModelResolver = Callable[[str, ModelOptions], Model]
"""Turns an agent's model string and provider options into a model (`resolve_model`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedAgent:
    """One agent file, validated and built."""

    spec: AgentSpec
    agent: Agent
    middleware: tuple[object, ...]
    """Built from the spec's `middleware:` entries, outermost first."""
    source: str
    """The file, relative to the project (`agents/assistant.yaml`)."""


def check_file_name(display: str, stem: str) -> str:
    """Return `stem` if it is a valid agent or pipeline name, else raise naming the file."""
    try:
        return check_agent_name(stem)
    except ConfigError as error:
        raise ProjectError(display, f"the file name is not a valid name: {error}") from error


def load_agents(
    root: Path, tools: Mapping[str, Tool], resolve: ModelResolver
) -> dict[str, LoadedAgent]:
    """Load every `root/agents/*.yaml`, by agent name.

    Raises:
        ProjectError: no `agents/` folder, or a file is invalid (naming file, line, field).
    """
    folder = root / "agents"
    if not folder.is_dir():
        raise ProjectError("agents/", "the project has no agents/ folder; add agents/<name>.yaml")
    agents: dict[str, LoadedAgent] = {}
    for path in sorted(folder.iterdir()):
        display = f"agents/{path.name}"
        if path.suffix == ".yml":
            raise ProjectError(display, "agent files end in .yaml; rename it")
        if path.suffix != ".yaml":
            logger.debug("%s: not an agent file (agents/<name>.yaml), so it is ignored", display)
            continue
        name = check_file_name(display, path.stem)
        agents[name] = _load_agent(path, display, name, tools, resolve)
    return agents


def _load_agent(
    path: Path, display: str, name: str, tools: Mapping[str, Tool], resolve: ModelResolver
) -> LoadedAgent:
    spec, node = load_spec(path, display, AgentSpec)
    at = partial(_located, display, node)
    for index, tool in enumerate(spec.tools):
        if tool not in tools:
            raise at("tools", index)(unknown_tool_problem(tool, tools))
        if tool in spec.tools[:index]:
            raise at("tools", index)(f"the tool {tool!r} is listed twice")
    middleware = tuple(
        build_middleware(ref, at("middleware", index)) for index, ref in enumerate(spec.middleware)
    )
    try:
        PromptTemplate(spec.instructions, agent=name)
    except ConfigError as error:
        raise at("instructions")(str(error)) from error
    try:
        model = resolve(spec.model, ModelOptions(settings=spec.provider))
    except ConfigError as error:
        raise at("model")(str(error)) from error
    options = {} if spec.max_steps is None else {"max_steps": spec.max_steps}
    try:
        agent = Agent(
            name,
            model=model,
            instructions=spec.instructions,
            tools=[tools[tool] for tool in spec.tools],
            settings=spec.settings,
            **options,
        )
    except ConfigError as error:
        raise ProjectError(display, str(error)) from error
    return LoadedAgent(spec=spec, agent=agent, middleware=middleware, source=display)


def _located(
    display: str, node: yaml.Node | None, *loc: str | int
) -> Callable[[str], ProjectError]:
    """Makes errors for the field at `loc` of the file: its path and line filled in."""
    return partial(ProjectError, display, line=line_of(node, loc), field=field_path(loc))
