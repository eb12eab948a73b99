"""The four kinds of call a run makes, their requests and results, and what they call.

| kind     | request         | result           | target protocol |
|----------|-----------------|------------------|-----------------|
| pipeline | `PipelineCall`  | `PipelineResult` | `PipelineLike`  |
| agent    | `AgentCall`     | `AgentResult`    | `AgentLike`     |
| model    | `ModelRequest`  | `ModelResponse`  | `Model`         |
| tool     | `ToolCall`      | `ToolResult`     | `ToolLike`      |

Each request carries its target, so one chain composed per middleware stack serves every
pipeline, agent, model and tool (and a middleware can redirect a call: a fallback model is
`dataclasses.replace(request, model=other)`). Like messages these are slotted, non-frozen
dataclasses because they are built on every call; treat them as values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeAlias

from onionskin.core.messages import Message
from onionskin.core.usage import Usage

CallKind: TypeAlias = Literal["pipeline", "agent", "model", "tool"]
CALL_KINDS: tuple[CallKind, ...] = ("pipeline", "agent", "model", "tool")


class PipelineLike(Protocol):
    """What a pipeline call runs: anything with a name that can run its agents."""

    @property
    def name(self) -> str:
        """The pipeline's name."""
        ...

    async def run_pipeline(self, call: PipelineCall) -> PipelineResult:
        """Run the pipeline's agents for `call`."""
        ...


class AgentLike(Protocol):
    """What an agent call runs: anything with a name that can take one turn."""

    @property
    def name(self) -> str:
        """The agent's name."""
        ...

    async def run_turn(self, call: AgentCall) -> AgentResult:
        """Take one turn: call the model (and tools) until it answers."""
        ...


class Model(Protocol):
    """A language model: a request in, a response out, or the response streamed."""

    @property
    def name(self) -> str:
        """The model's name, as price tables and traces know it (`gpt-4o-mini`)."""
        ...

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Answer `request` in one piece."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Answer `request` as text deltas, then exactly one final `ModelResponse`."""
        ...

    def cost(self, usage: Usage) -> Decimal:
        """What `usage` of this model costs, in USD."""
        ...


class ToolLike(Protocol):
    """What a tool call runs."""

    @property
    def name(self) -> str:
        """The tool's name, as the model calls it."""
        ...

    async def invoke(self, call: ToolCall) -> ToolResult:
        """Validate `call`'s arguments, run the tool and wrap its value."""
        ...


@dataclass(slots=True, kw_only=True)
class PipelineCall:
    """A run of a pipeline: its input, about to go through every agent."""

    pipeline: PipelineLike
    input: Message
    """The user's content; the first agent receives it."""


@dataclass(slots=True, kw_only=True)
class PipelineResult:
    """What a pipeline answered."""

    output: Any
    """The last agent's output (text, or what a middleware made of it): Any by design."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Every agent's output by agent name, in run order."""


@dataclass(slots=True, kw_only=True)
class AgentCall:
    """One agent's turn inside a pipeline."""

    agent: AgentLike
    content: Message
    """What the agent is asked: the pipeline input or the previous agent's output."""

    @property
    def agent_name(self) -> str:
        """The agent's name."""
        return self.agent.name


@dataclass(slots=True, kw_only=True)
class AgentResult:
    """What an agent answered at the end of its turn."""

    agent_name: str
    output: Any
    """The final text, or what an after_agent hook replaced it with: Any by design."""
    messages: list[Message] = field(default_factory=list)
    """The turn's transcript: system, user, assistant and tool messages."""


@dataclass(slots=True, kw_only=True)
class ToolDefinition:
    """A tool as the model sees it: name, description and JSON schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """A JSON schema object (JSON values: Any)."""


@dataclass(slots=True, kw_only=True)
class ModelRequest:
    """A request to a model."""

    model: Model
    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Provider settings (temperature, max_tokens, ...): JSON values."""


@dataclass(slots=True, kw_only=True)
class ModelResponse:
    """A model's answer: one assistant message and what it cost in tokens."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    model_name: str = ""


@dataclass(slots=True, kw_only=True)
class ToolCall:
    """A call of a tool (seed 001): by the model inside a run, or of any guarded function."""

    tool_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments, as the model or the caller gave them (not yet validated)."""
    args: tuple[Any, ...] = ()
    """Positional arguments (guarded plain functions only; models send kwargs)."""
    call_id: str = ""
    session_id: str | None = None
    tool: ToolLike | None = None
    """The tool `tool_name` resolved to at the call site; None when no such tool exists."""


ToolStatus: TypeAlias = Literal["success", "error"]


@dataclass(slots=True, kw_only=True)
class ToolResult:
    """A tool's answer (seed 001): its value, or the error the model gets back."""

    tool_name: str
    value: Any = None
    """What the tool returned: Any by design."""
    error: str | None = None
    """Why the call could not run (unknown tool, invalid arguments); sent to the model."""
    execution_time_ms: float = 0.0
    call_id: str = ""

    @property
    def status(self) -> ToolStatus:
        """`"error"` when the call could not run, `"success"` otherwise."""
        return "success" if self.error is None else "error"
