"""An agent: a name, instructions, a model and the tools it may call."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from onionskin.core.calls import AgentCall, AgentResult, Model
from onionskin.core.errors import ConfigError
from onionskin.runtime._prompt import PromptTemplate
from onionskin.runtime._turn import run_agent_turn
from onionskin.runtime.tool import Tool, as_tool

# Agent names become file names (middleware/<agent>.py), store keys and URL segments, so
# nothing that could climb a directory or split a key gets through.
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_agent_name(name: object) -> str:
    """Return `name` if it is a valid agent name, else raise `ConfigError` saying why."""
    if not isinstance(name, str) or not AGENT_NAME.fullmatch(name):
        raise ConfigError(
            f"agent name {name!r} must be 1-64 letters, digits, _ or -, starting with a "
            "letter or digit (it names files and URLs, so no dots, slashes or spaces)"
        )
    return name


class Agent:
    """An agent: it answers a message by calling its model, and its tools when asked.

    `instructions` may hold `{var}` placeholders, filled from `context.state` at every turn;
    a missing key raises `PromptVariableError` naming the key and the agent.
    """

    def __init__(
        self,
        name: str,
        *,
        model: Model,
        instructions: str = "",
        tools: Iterable[Tool | Callable[..., Any]] = (),
        max_steps: int = 10,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self._name = check_agent_name(name)
        missing = [
            m for m in ("request", "stream", "cost") if not callable(getattr(model, m, None))
        ]
        if missing or not isinstance(getattr(model, "name", None), str):
            raise ConfigError(
                f"agent {name!r}: {model!r} is not a Model: it needs a name and request(), "
                f"stream() and cost() methods (missing: {', '.join(missing) or 'name'})"
            )
        if type(max_steps) is not int or max_steps < 1:  # bool is an int: refuse it too
            raise ConfigError(f"agent {name!r}: max_steps must be an int >= 1, got {max_steps!r}")
        self.model = model
        self.max_steps = max_steps
        self.settings: Mapping[str, Any] = dict(settings or {})  # provider settings: JSON
        self.prompt = PromptTemplate(instructions, agent=name)
        self.tools: dict[str, Tool] = {}
        for item in tools:
            tool = as_tool(item)
            if tool.name in self.tools:
                raise ConfigError(f"agent {name!r}: two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self.tool_definitions = [tool.definition for tool in self.tools.values()]
        self.tool_names = tuple(self.tools)

    @property
    def name(self) -> str:
        """The agent's name."""
        return self._name

    @property
    def instructions(self) -> str:
        """The instructions as written, placeholders unfilled."""
        return self.prompt.text

    def run_turn(self, call: AgentCall) -> Coroutine[Any, Any, AgentResult]:
        """Take one turn on `call.content` (returns the coroutine: no extra frame)."""
        return run_agent_turn(self, call)

    def __repr__(self) -> str:
        return f"Agent({self._name!r}, model={self.model.name!r}, tools={list(self.tools)!r})"
