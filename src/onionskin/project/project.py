"""A project folder, loaded: its agents, tools, middleware, pipelines and settings.

```
DIR/agents/<name>.yaml        one agent each (required folder)
DIR/tools/*.py                every public function defined there is a tool
DIR/middleware/<agent>.py     seed 002's before/after for agents/<agent>.yaml
DIR/pipelines/<name>.yaml     optional: `agents: [a, b]` run in order
DIR/onionskin.yaml            optional: project settings (`database_url`, `plugins`)
```

`load_project` reads and validates everything at once, so a broken file is reported when
the project loads, never halfway through a run; every error is a `ProjectError` naming the
file (and the line and field when there is one). After loading, the filesystem is not read
again: names given later (`orchestrator("...")`, often from a request) are checked against
the agent-name rule and the loaded names only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.middleware.capture import MessageCaptureMiddleware
from onionskin.plugins import PluginConfig, PluginRegistry, assemble_middleware
from onionskin.project._agents import LoadedAgent, ModelResolver, load_agents
from onionskin.project._pipelines import load_pipelines
from onionskin.project._scoped import AgentScoped
from onionskin.project._specs import load_spec
from onionskin.project._tools import load_tools
from onionskin.project.errors import ProjectError, UnknownAgentError
from onionskin.project.file_middleware import FileMiddleware, load_file_middleware
from onionskin.project.spec import AgentSpec, PipelineSpec, ProjectSettings
from onionskin.runtime.agent import Agent, check_agent_name
from onionskin.runtime.models.resolve import resolve_model
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.runtime.pipeline import Pipeline
from onionskin.runtime.tool import Tool


class Project:
    """A loaded project folder; build it with [load_project][onionskin.project.load_project]."""

    def __init__(
        self,
        *,
        path: Path,
        agents: Mapping[str, LoadedAgent],
        pipelines: Mapping[str, PipelineSpec],
        tools: Mapping[str, Tool],
        settings: ProjectSettings,
        file_middleware: Mapping[str, FileMiddleware],
    ) -> None:
        self._path = path
        self._loaded = MappingProxyType(dict(agents))
        self._agents = MappingProxyType({name: a.spec for name, a in agents.items()})
        self._pipeline_specs = MappingProxyType(dict(pipelines))
        self._pipelines = MappingProxyType(
            {name: tuple(spec.agents) for name, spec in pipelines.items()}
        )
        self._tools = MappingProxyType(dict(tools))
        self._settings = settings
        self._file_middleware = MappingProxyType(dict(file_middleware))

    @property
    def path(self) -> Path:
        """The project directory (absolute)."""
        return self._path

    @property
    def agents(self) -> Mapping[str, AgentSpec]:
        """Every agent's spec, by name."""
        return self._agents

    @property
    def pipelines(self) -> Mapping[str, tuple[str, ...]]:
        """Every declared pipeline's agents, in run order, by pipeline name."""
        return self._pipelines

    @property
    def pipeline_specs(self) -> Mapping[str, PipelineSpec]:
        """Every declared pipeline's spec (agents and description), by pipeline name."""
        return self._pipeline_specs

    @property
    def tools(self) -> Mapping[str, Tool]:
        """Every tool of `tools/*.py`, by name."""
        return self._tools

    @property
    def settings(self) -> ProjectSettings:
        """The settings of `onionskin.yaml` (defaults when the file is absent)."""
        return self._settings

    def agent(self, name: str) -> Agent:
        """The agent `agents/<name>.yaml` describes.

        Raises:
            ConfigError: `name` is not a valid agent name (a path trick, say).
            UnknownAgentError: the project has no such agent.
        """
        check_agent_name(name)
        loaded = self._loaded.get(name)
        if loaded is None:
            raise UnknownAgentError(name, tuple(sorted(self._loaded)))
        return loaded.agent

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline `name`: a declared pipeline, or an agent's name for that agent alone.

        Raises:
            ConfigError: `name` is not a valid name (a path trick, say).
            UnknownAgentError: the project has no such pipeline or agent.
        """
        check_agent_name(name)
        agents = self._pipelines.get(name)
        if agents is not None:
            return Pipeline([self._loaded[agent].agent for agent in agents], name=name)
        if name not in self._loaded:
            raise UnknownAgentError(name, tuple(sorted({*self._loaded, *self._pipelines})))
        return Pipeline([self._loaded[name].agent])

    def orchestrator(
        self,
        name: str,
        *,
        middleware: Iterable[object] = (),
        plugins: PluginRegistry | None = None,
        entry_points: bool = True,
        capture: MessageCaptureMiddleware | bool = True,
    ) -> Orchestrator:
        """An orchestrator for the pipeline (or agent) `name`.

        The stack, outermost first (seed 004's order): the core, that is `middleware`, then
        each agent's `middleware:` from its YAML, then the project's `middleware/<agent>.py`
        files; then plugin middleware (each factory gets its settings from
        `onionskin.yaml`'s `plugins:`); then message capture, innermost.

        Args:
            name: a pipeline or agent of the project.
            middleware: the outermost layers (tenancy, guards, checkpoints ...).
            plugins: where plugin factories are registered; the default registry if None.
            entry_points: also load the plugins installed packages declare.
            capture: record the transcript (True), with this capture middleware, or not.

        Raises:
            ConfigError: `name` is not a valid name, or a middleware is not one.
            UnknownAgentError: the project has no such pipeline or agent.
        """
        pipeline = self.pipeline(name)
        stack = assemble_middleware(
            self._middleware(pipeline, middleware),
            config=PluginConfig(agent=pipeline.name, project_dir=self._path),
            registry=plugins,
            entry_points=entry_points,
            capture=capture,
            settings=self._settings.plugins,
        )
        return Orchestrator(pipeline, middleware=stack)

    def _middleware(self, pipeline: Pipeline, given: Iterable[object]) -> list[object]:
        """The core of the stack for `pipeline`, outermost first (plugins come after it)."""
        names = [agent.name for agent in pipeline.agents]
        return [
            *given,
            *self._agent_middleware(names),
            *(self._file_middleware[name] for name in names if name in self._file_middleware),
        ]

    def _agent_middleware(self, names: list[str]) -> list[object]:
        if len(names) == 1:
            # One agent: every call of the run is its own, so its middleware needs no scope.
            return list(self._loaded[names[0]].middleware)
        return [AgentScoped(item, name) for name in names for item in self._loaded[name].middleware]

    def __repr__(self) -> str:
        return f"Project({str(self._path)!r}, agents={sorted(self._agents)!r})"


def load_project(
    path: str | Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    model_resolver: ModelResolver = resolve_model,
) -> Project:
    """Load and validate the project folder at `path`.

    Args:
        path: the project directory.
        clock: where middleware files' `timestamp` and `duration_ms` come from.
        model_resolver: turns each agent's `model` and `provider` into a model.

    Raises:
        ProjectError: anything invalid, naming the file (and line and field, when known).
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise ProjectError(str(path), "is not a directory; give the project's folder")
    settings_file = root / "onionskin.yaml"
    settings = ProjectSettings()
    if settings_file.is_file():
        settings, _ = load_spec(settings_file, "onionskin.yaml", ProjectSettings)
    tools = load_tools(root)
    agents = load_agents(root, tools, model_resolver)
    return Project(
        path=root,
        agents=agents,
        pipelines=load_pipelines(root, agents),
        tools=tools,
        settings=settings,
        file_middleware=load_file_middleware(root, agents, clock=clock),
    )
