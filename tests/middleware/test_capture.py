"""MessageCaptureMiddleware: the run's transcript, in order, as the model and tools saw it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from onionskin import (
    Agent,
    BaseMiddleware,
    ConfigError,
    Message,
    ModelError,
    ModelRequest,
    OnionskinError,
    Orchestrator,
    PipelineResult,
    RunContext,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.capture import (
    MessageCaptureMiddleware,
    ModelExchange,
    ToolExchange,
    TranscriptEntry,
    current_transcript,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import ScriptedModel, tool_call


def lookup(order_id: str) -> str:
    """Find an order."""
    return f"{order_id}: shipped"


def support_script(request: ModelRequest) -> ScriptItem:
    if request.messages[-1].role == "tool":
        return "it shipped"
    return tool_call("lookup", order_id="A1")


class TranscriptAtEnd(BaseMiddleware):
    """Reads the transcript once the pipeline is done, as an auditing layer would."""

    def __init__(self) -> None:
        self.seen: list[tuple[TranscriptEntry, ...]] = []

    def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        self.seen.append(current_transcript())


async def test_the_transcript_holds_every_model_and_tool_call_in_order() -> None:
    entries: list[TranscriptEntry] = []
    reader = TranscriptAtEnd()
    agent = Agent(
        "support",
        model=ScriptedModel(support_script),
        instructions="Be brief.",
        tools=[lookup],
    )
    orchestrator = Orchestrator(
        agent, middleware=[reader, MessageCaptureMiddleware(sink=entries.append)]
    )
    result = await orchestrator.execute("where is A1?")
    first, tool, second = entries
    assert isinstance(first, ModelExchange)
    assert isinstance(tool, ToolExchange)
    assert isinstance(second, ModelExchange)
    assert {(e.run_id, e.agent) for e in entries} == {(result.run_id, "support")}
    assert [(m.role, m.text) for m in first.messages] == [
        ("system", "Be brief."),
        ("user", "where is A1?"),
    ]
    assert first.response is not None
    assert first.response.message.tool_calls[0].tool_name == "lookup"
    assert first.model == "scripted"
    assert (tool.call.tool_name, tool.call.kwargs) == ("lookup", {"order_id": "A1"})
    assert tool.result is not None
    assert tool.result.value == "A1: shipped"
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool"]
    assert second.response is not None
    assert second.response.message.text == "it shipped"
    assert [entry.kind for entry in entries] == ["model", "tool", "model"]
    assert reader.seen == [tuple(entries)]


async def test_each_run_keeps_its_own_transcript() -> None:
    reader = TranscriptAtEnd()
    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(lambda request: "ok")),
        middleware=[reader, MessageCaptureMiddleware()],
    )
    first = await orchestrator.execute("one")
    second = await orchestrator.execute("two")
    assert [[e.run_id for e in run] for run in reader.seen] == [[first.run_id], [second.run_id]]


async def test_the_record_does_not_follow_later_edits_of_the_messages() -> None:
    entries: list[TranscriptEntry] = []

    def script(request: ModelRequest) -> str:
        request.messages.append(Message.user("added by a misbehaving model"))
        return "ok"

    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(script)),
        middleware=[MessageCaptureMiddleware(sink=entries.append)],
    )
    await orchestrator.execute("hi")
    assert isinstance(entries[0], ModelExchange)
    assert [m.text for m in entries[0].messages] == ["hi"]


async def test_a_failed_model_call_is_recorded_and_its_error_propagates() -> None:
    entries: list[TranscriptEntry] = []
    failure = ModelError("provider down")

    def script(request: ModelRequest) -> str:
        raise failure

    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(script)),
        middleware=[MessageCaptureMiddleware(sink=entries.append)],
    )
    with pytest.raises(ModelError) as raised:
        await orchestrator.execute("hi")
    assert raised.value is failure
    [entry] = entries
    assert isinstance(entry, ModelExchange)
    assert entry.response is None
    assert entry.error == "ModelError: provider down"


async def test_a_raising_tool_is_recorded_and_its_error_propagates() -> None:
    entries: list[TranscriptEntry] = []

    def explode() -> str:
        """Always fails."""
        raise ValueError("tool broke")

    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel([tool_call("explode"), "ok"]), tools=[explode]),
        middleware=[MessageCaptureMiddleware(sink=entries.append)],
    )
    with pytest.raises(ValueError, match="tool broke"):
        await orchestrator.execute("hi")
    tool = entries[-1]
    assert isinstance(tool, ToolExchange)
    assert (tool.result, tool.error) == (None, "ValueError: tool broke")


async def test_an_async_sink_also_gets_failed_calls() -> None:
    received: list[str | None] = []

    async def sink(entry: TranscriptEntry) -> None:
        received.append(entry.error)

    def explode() -> str:
        """Always fails."""
        raise ValueError("tool broke")

    agent = Agent("assistant", model=ScriptedModel([tool_call("explode")]), tools=[explode])
    with pytest.raises(ValueError, match="tool broke"):
        await Orchestrator(agent, middleware=[MessageCaptureMiddleware(sink=sink)]).execute("hi")
    assert received == [None, "ValueError: tool broke"]


async def test_an_async_sink_is_awaited_in_order() -> None:
    received: list[str] = []

    async def sink(entry: TranscriptEntry) -> None:
        received.append(entry.kind)

    agent = Agent("support", model=ScriptedModel(support_script), tools=[lookup])
    await Orchestrator(agent, middleware=[MessageCaptureMiddleware(sink=sink)]).execute("where?")
    assert received == ["model", "tool", "model"]


@pytest.mark.parametrize("is_async", [False, True])
async def test_a_failing_sink_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture, is_async: bool
) -> None:
    def failing(entry: TranscriptEntry) -> None:
        raise OSError("disk full")

    async def failing_async(entry: TranscriptEntry) -> None:
        failing(entry)

    reader = TranscriptAtEnd()
    capture = MessageCaptureMiddleware(sink=failing_async if is_async else failing)
    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(["ok"])), middleware=[reader, capture]
    )
    with caplog.at_level(logging.ERROR, logger="onionskin.capture"):
        result = await orchestrator.execute("hi")
    assert result.output == "ok"
    assert len(reader.seen[0]) == 1  # the run's own record is kept
    [record] = [r for r in caplog.records if r.name == "onionskin.capture"]
    assert "OSError: disk full" in record.getMessage()


async def test_outside_a_run_only_the_sink_receives_entries() -> None:
    entries: list[TranscriptEntry] = []
    capture = MessageCaptureMiddleware(sink=entries.append)
    call = ToolCall(tool_name="lookup", kwargs={"order_id": "A1"})

    async def run_tool(received: ToolCall) -> ToolResult:
        return ToolResult(tool_name=received.tool_name, value="shipped")

    next_handler: Callable[[ToolCall], Awaitable[ToolResult]] = run_tool
    result = await capture.wrap_tool_call(call, next_handler)
    assert entries == [ToolExchange(run_id=None, agent=None, call=call, result=result)]


def test_current_transcript_outside_a_run_raises() -> None:
    with pytest.raises(OnionskinError, match="outside a run"):
        current_transcript()


def test_a_non_callable_sink_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"MessageCaptureMiddleware\.sink"):
        MessageCaptureMiddleware(sink="log.txt")  # type: ignore[arg-type]


def test_capture_declares_the_capture_position() -> None:
    from onionskin.core.placement import contract_of

    contract = contract_of(MessageCaptureMiddleware())
    assert (contract.name, contract.position) == ("MessageCaptureMiddleware", "capture")
