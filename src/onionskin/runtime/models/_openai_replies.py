"""OpenAI chat completions, whole or streamed in chunks, as onionskin `ModelResponse`s.

Chunks are assembled here rather than by the SDK's `chat.completions.stream()` helper, which
re-parses partial tool arguments on every chunk for its structured-output features; here the
arguments are parsed once, at the end, into a clear `ModelError` when they are not a JSON
object, and only the chunk fields compatible servers (vLLM, Ollama) share are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from onionskin.core.calls import ModelResponse
from onionskin.core.errors import ModelError
from onionskin.core.ids import new_id
from onionskin.core.messages import Message, Part, TextPart, ToolCallPart
from onionskin.core.usage import Usage
from onionskin.runtime.models._wire import tool_arguments

PROVIDER = "openai"


def wire_usage(usage: CompletionUsage | None) -> Usage:
    """The usage a completion reports; zero when the server reported none."""
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=min(cached, usage.prompt_tokens),
    )


def _tool_call(model: str, call_id: str | None, name: str, arguments: str) -> ToolCallPart:
    if not name:
        raise ModelError(f"{PROVIDER} model {model!r} called a tool without naming it")
    return ToolCallPart(
        tool_name=name,
        args=tool_arguments(PROVIDER, model, name, arguments),
        # A compatible server may leave the id out; the tool result must still name one.
        call_id=call_id or f"call_{new_id()}",
    )


def completion_response(model: str, completion: ChatCompletion) -> ModelResponse:
    """A whole chat completion as a `ModelResponse` (its first choice).

    Raises:
        ModelError: no choice, a custom (non-function) tool call, or bad tool arguments.
    """
    if not completion.choices:
        raise ModelError(f"{PROVIDER} model {model!r} answered with no choices")
    message = completion.choices[0].message
    parts: list[Part] = []
    text = message.content or message.refusal
    if text:
        parts.append(TextPart(text))
    for call in message.tool_calls or ():
        if not isinstance(call, ChatCompletionMessageFunctionToolCall):
            raise ModelError(
                f"{PROVIDER} model {model!r} made a {call.type!r} tool call; onionskin tools "
                "are function tools"
            )
        function = call.function
        parts.append(_tool_call(model, call.id, function.name, function.arguments))
    return ModelResponse(
        message=Message("assistant", parts), usage=wire_usage(completion.usage), model_name=model
    )


@dataclass(slots=True)
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChunkAssembler:
    """Collects a streamed completion: text deltas as they come, tool calls and usage at the end."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self._usage = Usage()

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Take one chunk; return its text delta ('' when it carries none)."""
        if chunk.usage is not None:
            # With include_usage the last chunk reports the whole request's usage.
            self._usage = wire_usage(chunk.usage)
        text = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            text += delta.content or delta.refusal or ""
            for call in delta.tool_calls or ():
                self._tool_delta(call)
        if text:
            self._text.append(text)
        return text

    def _tool_delta(self, call: ChoiceDeltaToolCall) -> None:
        pending = self._calls.setdefault(call.index, _PendingCall())
        if call.id:
            pending.call_id = call.id
        function = call.function
        if function is None:
            return
        if function.name and not pending.name:
            pending.name = function.name
        if function.arguments:
            pending.arguments.append(function.arguments)

    def response(self) -> ModelResponse:
        """The assembled answer, with the usage of the stream's last chunk.

        Raises:
            ModelError: a tool call without a name or with arguments that are not JSON.
        """
        parts: list[Part] = []
        text = "".join(self._text)
        if text:
            parts.append(TextPart(text))
        for _, pending in sorted(self._calls.items()):
            arguments = "".join(pending.arguments)
            parts.append(_tool_call(self._model, pending.call_id, pending.name, arguments))
        message = Message("assistant", parts)
        return ModelResponse(message=message, usage=self._usage, model_name=self._model)
