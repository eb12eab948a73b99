"""onionskin messages and tools in the OpenAI chat completions wire format."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal, assert_never

from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionToolUnionParam,
    ChatCompletionUserMessageParam,
)

from onionskin.core.calls import ToolDefinition
from onionskin.core.messages import DataPart, Message, TextPart, ToolCallPart, ToolReturnPart
from onionskin.runtime.models._wire import data_base64, unsupported_part

PROVIDER = "openai"
RESERVED_SETTINGS = frozenset({"model", "messages", "tools", "stream", "stream_options"})
"""Body fields the adapter sends itself: a setting may not overwrite them."""

_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_AUDIO_FORMATS: dict[str, Literal["wav", "mp3"]] = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}
_USER_CONTENT = "text, images (PNG, JPEG, GIF, WebP), PDF files and WAV or MP3 audio"


def _text_only(model: str, message: Message) -> str:
    for part in message.parts:
        if not isinstance(part, TextPart):
            raise unsupported_part(PROVIDER, model, message.role, part, "text only")
    return message.text


def _data(model: str, part: DataPart) -> ChatCompletionContentPartParam:
    mime = part.mime_type.lower()
    if mime in _IMAGE_TYPES:
        url = f"data:{mime};base64,{data_base64(part.data)}"
        return {"type": "image_url", "image_url": {"url": url}}
    if mime == "application/pdf":
        data = f"data:{mime};base64,{data_base64(part.data)}"
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data}}
    audio = _AUDIO_FORMATS.get(mime)
    if audio is not None:
        return {
            "type": "input_audio",
            "input_audio": {"data": data_base64(part.data), "format": audio},
        }
    raise unsupported_part(PROVIDER, model, "user", part, _USER_CONTENT)


def _user(model: str, message: Message) -> ChatCompletionUserMessageParam:
    parts = message.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return {"role": "user", "content": parts[0].text}
    content: list[ChatCompletionContentPartParam] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, DataPart):
            content.append(_data(model, part))
        else:
            raise unsupported_part(PROVIDER, model, "user", part, _USER_CONTENT)
    return {"role": "user", "content": content}


def _assistant(model: str, message: Message) -> ChatCompletionAssistantMessageParam:
    texts: list[str] = []
    calls: list[ChatCompletionMessageFunctionToolCallParam] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            arguments = json.dumps(dict(part.args), ensure_ascii=False)
            calls.append(
                {
                    "id": part.call_id,
                    "type": "function",
                    "function": {"name": part.tool_name, "arguments": arguments},
                }
            )
        else:
            raise unsupported_part(PROVIDER, model, "assistant", part, "text and tool calls")
    text = "\n".join(texts)
    param: ChatCompletionAssistantMessageParam = {"role": "assistant", "content": text or None}
    if calls:
        param["tool_calls"] = calls
    elif not text:
        param["content"] = ""
    return param


def _tool_results(model: str, message: Message) -> list[ChatCompletionToolMessageParam]:
    results: list[ChatCompletionToolMessageParam] = []
    for part in message.parts:
        if not isinstance(part, ToolReturnPart):
            raise unsupported_part(PROVIDER, model, "tool", part, "tool results only")
        # The wire has no error flag: the content already says what went wrong.
        results.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
    return results


def wire_messages(model: str, messages: Iterable[Message]) -> list[ChatCompletionMessageParam]:
    """`messages` as chat completion messages (a tool message becomes one per result).

    Raises:
        ModelError: a message holds a part the wire format cannot carry there.
    """
    wire: list[ChatCompletionMessageParam] = []
    for message in messages:
        role = message.role
        if role == "system":
            wire.append({"role": "system", "content": _text_only(model, message)})
        elif role == "user":
            wire.append(_user(model, message))
        elif role == "assistant":
            wire.append(_assistant(model, message))
        elif role == "tool":
            wire.extend(_tool_results(model, message))
        else:
            assert_never(role)
    return wire


def wire_tools(tools: Iterable[ToolDefinition]) -> list[ChatCompletionToolUnionParam]:
    """Tool definitions as chat completion function tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in tools
    ]
