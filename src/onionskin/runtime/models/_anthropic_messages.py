"""onionskin messages and tools in the Anthropic messages wire format.

System messages become the request's `system` text; a tool message becomes a user turn of
`tool_result` blocks; consecutive turns of one role are merged into one, as the API wants
user and assistant turns to alternate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias, assert_never

from anthropic.types import ContentBlockParam, MessageParam, ToolParam

from onionskin.core.calls import ToolDefinition
from onionskin.core.errors import ConfigError, ModelError
from onionskin.core.messages import DataPart, Message, TextPart, ToolCallPart, ToolReturnPart
from onionskin.pricing import MAX_TOKENS_SETTINGS
from onionskin.runtime.models._wire import data_base64, passed_settings, unsupported_part

PROVIDER = "anthropic"
RESERVED_SETTINGS = frozenset({"model", "messages", "tools", "system", "stream"})
"""Body fields the adapter sends itself: a setting may not overwrite them."""

_USER_CONTENT = "text, images (JPEG, PNG, GIF, WebP), PDF and plain-text documents"
_IMAGE_TYPES: dict[str, Literal["image/jpeg", "image/png", "image/gif", "image/webp"]] = {
    "image/jpeg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}
_WireRole: TypeAlias = Literal["user", "assistant"]


def _data(model: str, part: DataPart) -> ContentBlockParam:
    mime = part.mime_type.lower()
    if (image := _IMAGE_TYPES.get(mime)) is not None:
        source = data_base64(part.data)
        return {"type": "image", "source": {"type": "base64", "media_type": image, "data": source}}
    if mime == "application/pdf":
        source = data_base64(part.data)
        return {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": source},
        }
    if mime == "text/plain":
        try:
            text = part.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ModelError(
                f"{PROVIDER} model {model!r}: a text/plain DataPart must be UTF-8 ({error})"
            ) from error
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    raise unsupported_part(PROVIDER, model, "user", part, _USER_CONTENT)


def _user(model: str, message: Message) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, DataPart):
            blocks.append(_data(model, part))
        else:
            raise unsupported_part(PROVIDER, model, "user", part, _USER_CONTENT)
    return blocks


def _assistant(model: str, message: Message) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            call_id, name, args = part.call_id, part.tool_name, dict(part.args)
            blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": args})
        else:
            raise unsupported_part(PROVIDER, model, "assistant", part, "text and tool calls")
    return blocks


def _tool_results(model: str, message: Message) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    for part in message.parts:
        if not isinstance(part, ToolReturnPart):
            raise unsupported_part(PROVIDER, model, "tool", part, "tool results only")
        blocks.append(
            {
                "type": "tool_result",
                "tool_use_id": part.call_id,
                "content": part.content,
                "is_error": part.is_error,
            }
        )
    return blocks


def _system(model: str, message: Message) -> str:
    for part in message.parts:
        if not isinstance(part, TextPart):
            raise unsupported_part(PROVIDER, model, "system", part, "text only")
    return message.text


def wire_messages(model: str, messages: Iterable[Message]) -> tuple[str, list[MessageParam]]:
    """The `system` text and the user/assistant turns that carry `messages`.

    Raises:
        ModelError: a message holds a part the wire format cannot carry there.
    """
    system: list[str] = []
    turns: list[tuple[_WireRole, list[ContentBlockParam]]] = []
    for message in messages:
        role = message.role
        wire_role: _WireRole = "user"
        if role == "system":
            system.append(_system(model, message))
            continue
        if role == "user":
            blocks = _user(model, message)
        elif role == "assistant":
            blocks, wire_role = _assistant(model, message), "assistant"
        elif role == "tool":
            blocks = _tool_results(model, message)
        else:
            assert_never(role)
        if not blocks:
            continue  # nothing to send (an empty text): the API refuses empty turns
        if turns and turns[-1][0] == wire_role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((wire_role, blocks))
    wire: list[MessageParam] = []
    for wire_role, blocks in turns:
        if wire_role == "user":
            wire.append({"role": "user", "content": blocks})
        else:
            wire.append({"role": "assistant", "content": blocks})
    return "\n\n".join(text for text in system if text), wire


def wire_tools(tools: Iterable[ToolDefinition]) -> list[ToolParam]:
    """Tool definitions as Anthropic tools (`input_schema` is the JSON schema)."""
    return [
        {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}
        for tool in tools
    ]


def _stop_sequences(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(f"the model settings' 'stop' must be a str or a list of str, got {value!r}")


def wire_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings sent in the body besides `max_tokens` (Any: JSON values).

    Raises:
        ConfigError: a setting names a field the adapter sends itself, or `stop` is not
            a str or a list of str.
    """
    body = passed_settings(PROVIDER, settings, RESERVED_SETTINGS)
    for name in MAX_TOKENS_SETTINGS:
        body.pop(name, None)  # sent as max_tokens
    if "stop" in body:
        body["stop_sequences"] = _stop_sequences(body.pop("stop"))
    return body
