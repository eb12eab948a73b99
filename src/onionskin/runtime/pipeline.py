"""A pipeline: agents in order, each one's output handed to the next."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pydantic_core

from onionskin.core.calls import AgentCall, PipelineCall, PipelineResult
from onionskin.core.context import RunContext, current_context
from onionskin.core.errors import ConfigError
from onionskin.core.messages import Message
from onionskin.runtime._observe import observed_call
from onionskin.runtime.agent import Agent

_PIPELINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _as_text(output: Any) -> str:
    # Any: an agent's output is text unless an after_agent hook made it something else.
    return (
        output if isinstance(output, str) else pydantic_core.to_json(output, fallback=str).decode()
    )


class Pipeline:
    """Agents run in order: the first gets the run's input, each next one the previous output.

    Every agent's output is also stored in `context.state[<agent name>]`, so later agents'
    instructions can quote it as `{agent_name}`.
    """

    def __init__(self, agents: Iterable[Agent], *, name: str | None = None) -> None:
        self.agents = tuple(agents)
        if not self.agents:
            raise ConfigError("a pipeline needs at least one agent")
        names = [agent.name for agent in self.agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"a pipeline's agents need distinct names, got {names}")
        self._name = name if name is not None else self.agents[0].name
        if not _PIPELINE_NAME.fullmatch(self._name):
            raise ConfigError(f"pipeline name {self._name!r} must be 1-64 letters, digits, _ or -")

    @property
    def name(self) -> str:
        """The pipeline's name (its id in events and stores)."""
        return self._name

    async def run_pipeline(self, call: PipelineCall) -> PipelineResult:
        """Run every agent in order inside the current run.

        A run resumed from a checkpoint skips the agents that already finished there and
        hands the next one what it would have received.
        """
        ctx = current_context()
        chain = ctx.chains.agent
        content = call.input
        progress = ctx.progress
        progress.input = content
        outputs: dict[str, Any] = progress.outputs
        output: Any = None
        last = self.agents[-1]
        agents = self.agents
        if ctx.resume is not None:
            agents, content, output = self._skip_finished(ctx, content)
        for agent in agents:
            ctx.enter_agent(agent.name)
            agent_call = AgentCall(agent=agent, content=content)
            if ctx.emit is None:
                result = await chain(agent_call)
            else:
                result = await observed_call(ctx, "agent", agent.name, chain, agent_call)
            output = outputs[agent.name] = ctx.state[agent.name] = result.output
            if agent is not last:
                content = Message.user(_as_text(output))
        return PipelineResult(output=output, outputs=outputs)

    def _skip_finished(
        self, ctx: RunContext, content: Message
    ) -> tuple[tuple[Agent, ...], Message, Any]:
        resume = ctx.resume
        assert resume is not None  # the caller checked
        unknown = set(resume.outputs) - {agent.name for agent in self.agents}
        if unknown:
            raise ConfigError(
                f"the checkpoint names agents {sorted(unknown)} that pipeline "
                f"{self.name!r} does not have: resume it with the pipeline that made it"
            )
        output: Any = None
        finished = 0
        for agent in self.agents:
            if agent.name not in resume.outputs:
                break
            output = ctx.progress.outputs[agent.name] = resume.outputs[agent.name]
            content = Message.user(_as_text(output))
            finished += 1
        if resume.turn_agent is None:
            ctx.resume = None  # nothing left to restore inside a turn
        return self.agents[finished:], content, output
