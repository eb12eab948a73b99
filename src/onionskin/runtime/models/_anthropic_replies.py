"""A streamed Anthropic message (its server-sent events) as an onionskin `ModelResponse`.

Read from the raw events rather than the SDK's `messages.stream()` helper, which parses partial
tool input as it goes: here a tool call's input is parsed once, at the end, into a clear
`ModelError` when it is not a JSON object, and a stream cut short (no `message_stop`) is seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
)

from onionskin.core.calls import ModelResponse
from onionskin.core.messages import Message, Part, TextPart, ToolCallPart
from onionskin.core.usage import Usage
from onionskin.runtime.models._wire import tool_arguments

PROVIDER = "anthropic"

# Errors the API reports inside a stream (its HTTP status was 200), as the status they mean.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def stream_error_status(status: int, body: object) -> int:
    """The HTTP status an error means: an error event inside a stream arrives under a 200."""
    if status >= 400 or not isinstance(body, dict):
        return status
    error = body.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return _STREAM_ERROR_STATUS.get(str(kind), 500)


@dataclass(slots=True)
class _Block:
    """A content block being streamed: text, or a tool call whose input JSON arrives in pieces."""

    text: list[str] = field(default_factory=list)
    tool: ToolUseBlock | None = None


class EventAssembler:
    """Collects a message stream: text deltas as they come, tool calls and usage at the end.

    Usage follows the API's accounting: `message_start` holds the input tokens (cache reads
    and writes apart), `message_delta` the cumulative output tokens (and, on newer servers,
    updated input counts). onionskin's `input_tokens` counts all three input kinds.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._blocks: dict[int, _Block] = {}
        self._input = self._cache_read = self._cache_write = self._output = 0
        self.finished = False
        """Whether `message_stop` arrived: without it the stream was cut short."""

    def add(self, event: RawMessageStreamEvent) -> str:
        """Take one event; return its text delta ('' when it carries none)."""
        if isinstance(event, RawContentBlockDeltaEvent):
            return self._block_delta(event)
        if isinstance(event, RawContentBlockStartEvent):
            return self._block_start(event)
        if isinstance(event, RawMessageStartEvent):
            usage = event.message.usage
            self._input, self._output = usage.input_tokens, usage.output_tokens
            self._cache_read = usage.cache_read_input_tokens or 0
            self._cache_write = usage.cache_creation_input_tokens or 0
        elif isinstance(event, RawMessageDeltaEvent):
            self._delta_usage(event)
        elif isinstance(event, RawMessageStopEvent):
            self.finished = True
        return ""

    def _block_start(self, event: RawContentBlockStartEvent) -> str:
        start = event.content_block
        if isinstance(start, TextBlock):
            self._blocks[event.index] = _Block(text=[start.text])
            return start.text
        if isinstance(start, ToolUseBlock):
            self._blocks[event.index] = _Block(tool=start)
        return ""  # other kinds (thinking, server tools) are not kept

    def _block_delta(self, event: RawContentBlockDeltaEvent) -> str:
        block = self._blocks.get(event.index)
        if block is None:
            return ""  # a delta of a block kind not kept
        delta = event.delta
        if isinstance(delta, TextDelta):
            block.text.append(delta.text)
            return delta.text
        if isinstance(delta, InputJSONDelta):
            block.text.append(delta.partial_json)
        return ""

    def _delta_usage(self, event: RawMessageDeltaEvent) -> None:
        usage = event.usage
        self._output = usage.output_tokens
        if usage.input_tokens is not None:
            self._input = usage.input_tokens
        if usage.cache_read_input_tokens is not None:
            self._cache_read = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            self._cache_write = usage.cache_creation_input_tokens

    def response(self) -> ModelResponse:
        """The assembled answer and its usage.

        Raises:
            ModelError: a tool call's input is not a JSON object.
        """
        parts: list[Part] = []
        for _, block in sorted(self._blocks.items()):
            joined = "".join(block.text)
            tool = block.tool
            if tool is None:
                # Adjacent text blocks (split by citations) read as one text, as streamed.
                if parts and isinstance(parts[-1], TextPart):
                    parts[-1] = TextPart(parts[-1].text + joined)
                elif joined:
                    parts.append(TextPart(joined))
                continue
            # The start event carries the input when it is complete already (`{}` otherwise).
            args = tool_arguments(PROVIDER, self._model, tool.name, joined) or dict(tool.input)
            parts.append(ToolCallPart(tool_name=tool.name, args=args, call_id=tool.id))
        usage = Usage(
            input_tokens=self._input + self._cache_read + self._cache_write,
            output_tokens=self._output,
            cached_tokens=self._cache_read,
        )
        message = Message("assistant", parts)
        return ModelResponse(message=message, usage=usage, model_name=self._model)
