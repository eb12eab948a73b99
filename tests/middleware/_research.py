"""A deterministic two-agent pipeline for checkpoint tests (importable by worker processes).

`researcher` looks up `alpha` and `beta` in its first reply, `gamma` in its second, then
answers with the facts; `writer` turns that into a report that quotes `{tone}` from state.
Both models are functions of the request, so a resumed run in a new process answers
exactly as the original would. Every model call and tool call appends a line to `log`
(when given), so tests can count what ran, across processes.
"""

from __future__ import annotations

from pathlib import Path

from onionskin import Agent, ModelRequest, Orchestrator, Pipeline, Tool, ToolReturnPart
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.testing import tool_call

STEP_KINDS = [
    "input",
    "model",
    "tool",
    "tool",
    "model",
    "tool",
    "model",
    "agent",
    "model",
    "agent",
    "end",
]
"""The checkpoints an uninterrupted run saves, in order."""

EXPECTED_OUTPUT = "[calm] report on: facts: alpha=1; beta=2; gamma=3"


def _note(log: Path | None, line: str) -> None:
    if log is not None:
        with log.open("a") as file:
            file.write(line + "\n")


def build(
    log: Path | None = None, *, middleware: list[object], price_per_mtok: int = 0
) -> Orchestrator:
    """The pipeline with `middleware` (outermost first); models priced at `price_per_mtok`."""
    values = {"alpha": 1, "beta": 2, "gamma": 3}

    def lookup(key: str) -> str:
        """Look a fact up."""
        _note(log, f"tool:{key}")
        return f"{key}={values[key]}"

    def researcher(request: ModelRequest) -> ScriptItem:
        returns = [
            part
            for message in request.messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        ]
        _note(log, f"model:researcher:{len(returns)}")
        if not returns:
            return [tool_call("lookup", key="alpha"), tool_call("lookup", key="beta")]
        if len(returns) == 2:
            return tool_call("lookup", key="gamma")
        return "facts: " + "; ".join(part.content for part in returns)

    def writer(request: ModelRequest) -> ScriptItem:
        _note(log, "model:writer")
        system, user = request.messages[0].text, request.messages[-1].text
        return f"[{system}] report on: {user}"

    agents = [
        Agent(
            "researcher",
            model=ScriptedModel(
                researcher,
                input_price_per_mtok=price_per_mtok,
                output_price_per_mtok=price_per_mtok,
            ),
            tools=[Tool(lookup)],
            instructions="Research.",
        ),
        Agent(
            "writer",
            model=ScriptedModel(
                writer, input_price_per_mtok=price_per_mtok, output_price_per_mtok=price_per_mtok
            ),
            instructions="{tone}",
        ),
    ]
    return Orchestrator(Pipeline(agents, name="research"), middleware=middleware)
